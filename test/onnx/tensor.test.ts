import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { TensorProtoSchema } from '../../src/onnx/proto/onnx_pb.js';
import { DataType, floatToBf16, floatToHalf, halfToFloat, setTensorFloat32, tensorToFloat32, tensorToInts } from '../../src/onnx/tensor.js';

const VALUES = [0, 1, -2.5, 0.333251953125, 65504, -0.0001, 1e-8];

describe('tensor values', () => {
  it('float16 bits decode to the IEEE values (reference: numpy float16)', () => {
    // np.array([1, -2, 65504, 2**-24, inf], np.float16).view(np.uint16)
    expect([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00].map(halfToFloat)).toEqual([1, -2, 65504, 2 ** -24, Infinity]);
    expect(Number.isNaN(halfToFloat(0x7e00))).toBe(true);
    expect([1, -2, 65504, 2 ** -24, 1e6].map(floatToHalf)).toEqual([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00]);
  });

  it('bfloat16 keeps the top 16 bits with round-to-nearest-even', () => {
    expect(floatToBf16(1)).toBe(0x3f80);
    expect(floatToBf16(-2)).toBe(0xc000);
    // 1 + 2^-8 is exactly halfway between bf16 1 and 1 + 2^-7: ties to even (1)
    expect(floatToBf16(1 + 2 ** -8)).toBe(0x3f80);
  });

  it.each([
    ['float32 raw_data', DataType.FLOAT],
    ['float16 raw_data', DataType.FLOAT16],
    ['bfloat16 raw_data', DataType.BFLOAT16],
    ['float64 raw_data', DataType.DOUBLE],
  ])('%s round-trips through setTensorFloat32 within its precision', (_, dataType) => {
    const t = create(TensorProtoSchema, { name: 'w', dataType, dims: [BigInt(VALUES.length)] });
    setTensorFloat32(t, Float32Array.from(VALUES));
    const back = tensorToFloat32(t);
    const tol = dataType === DataType.BFLOAT16 ? 1e-2 : dataType === DataType.FLOAT16 ? 1e-3 : 1e-7;
    VALUES.forEach((v, i) => expect(Math.abs(back[i] - v)).toBeLessThanOrEqual(Math.abs(v) * tol + 1e-7));
  });

  it('reads the typed fields when raw_data is empty (float_data, int32_data for float16, int64_data)', () => {
    const f = create(TensorProtoSchema, { dataType: DataType.FLOAT, dims: [2n], floatData: [1.5, -3] });
    expect(Array.from(tensorToFloat32(f))).toEqual([1.5, -3]);
    const h = create(TensorProtoSchema, { dataType: DataType.FLOAT16, dims: [2n], int32Data: [0x3c00, 0xc000] });
    expect(Array.from(tensorToFloat32(h))).toEqual([1, -2]);
    const i = create(TensorProtoSchema, { dataType: DataType.INT64, dims: [3n], int64Data: [1n, -1n, 9007199254740991n] });
    expect(tensorToInts(i)).toEqual([1, -1, 9007199254740991]);
  });

  it('refuses raw_data whose length does not match the shape', () => {
    const t = create(TensorProtoSchema, { name: 'bad', dataType: DataType.FLOAT, dims: [4n], rawData: new Uint8Array(12) });
    expect(() => tensorToFloat32(t)).toThrow(/raw_data has 12 bytes, expected 16/);
  });
});
