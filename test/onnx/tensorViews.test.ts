import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { TensorProtoSchema } from '../../src/onnx/proto/onnx_pb.js';
import { adoptTensorFloat32, DataType, makeFloatTensor, readFloat32 } from '../../src/onnx/tensor.js';
import { COLLECT_FROM_BYTES, collectGarbage, releaseField } from '../../src/pipeline/release.js';

describe('reading and writing big weights without copies', () => {
  it('readFloat32 views aligned float32 raw data in place and copies unaligned data', () => {
    const backing = new Uint8Array(4 * 5 + 1);
    new Float32Array(backing.buffer, 0, 5).set([1, -2, 3, -4, 5]);
    const aligned = create(TensorProtoSchema, { name: 'a', dataType: DataType.FLOAT, dims: [5n], rawData: backing.subarray(0, 20) });
    const view = readFloat32(aligned);
    expect(Array.from(view)).toEqual([1, -2, 3, -4, 5]);
    expect(view.buffer).toBe(backing.buffer);

    const shifted = new Uint8Array(21);
    shifted.set(backing.subarray(0, 20), 1);
    const unaligned = create(TensorProtoSchema, { name: 'u', dataType: DataType.FLOAT, dims: [5n], rawData: shifted.subarray(1, 21) });
    const copy = readFloat32(unaligned);
    expect(Array.from(copy)).toEqual([1, -2, 3, -4, 5]);
    expect(copy.buffer).not.toBe(shifted.buffer);
  });

  it('adoptTensorFloat32 takes a whole-buffer float32 array as raw data without copying, and copies a subarray', () => {
    const t = makeFloatTensor('w', [2, 2], new Float32Array(4));
    const values = Float32Array.from([1, 0, 0, 4]);
    adoptTensorFloat32(t, values);
    expect(t.rawData.buffer).toBe(values.buffer);
    expect(Array.from(readFloat32(t))).toEqual([1, 0, 0, 4]);

    const big = Float32Array.from([9, 1, 2, 3, 4]);
    adoptTensorFloat32(t, big.subarray(1));
    expect(t.rawData.buffer).not.toBe(big.buffer);
    expect(Array.from(readFloat32(t))).toEqual([1, 2, 3, 4]);
    expect(() => adoptTensorFloat32(t, new Float32Array(3))).toThrow(/3 values for shape \[2,2\]/);
  });

  it('releaseField makes a later read fail loudly instead of returning a stale model', () => {
    const holder = { proto: { big: true }, path: 'm.onnx' };
    releaseField(holder, 'proto', 'the dense model');
    expect(() => holder.proto).toThrow(/the dense model \(proto\) was released/);
    expect(holder.path).toBe('m.onnx');
  });

  it('collectGarbage runs a full collection without a command-line flag, repeatedly, once JavaScript holds COLLECT_FROM_BYTES', async () => {
    for (let round = 0; round < 2; round++) {
      // a released model's weights: their bytes alone reach the size from which a collection is worth it
      let big: Float32Array | undefined = new Float32Array(COLLECT_FROM_BYTES / 4);
      const ref = new WeakRef(big);
      big = undefined;
      // a WeakRef keeps its target alive until the current job ends
      await new Promise((r) => setImmediate(r));
      collectGarbage();
      expect(ref.deref(), `round ${round + 1}`).toBeUndefined();
    }
  });
});
