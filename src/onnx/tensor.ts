import { create } from '@bufbuild/protobuf';
import { TensorProto_DataLocation, TensorProto_DataType as DT, TensorProtoSchema, type TensorProto } from './proto/onnx_pb.js';

export { DT as DataType };

/** Bytes per element of the ONNX data types we read or write as raw data. */
const ITEM_SIZE: Partial<Record<DT, number>> = {
  [DT.FLOAT]: 4, [DT.DOUBLE]: 8, [DT.FLOAT16]: 2, [DT.BFLOAT16]: 2,
  [DT.INT8]: 1, [DT.UINT8]: 1, [DT.BOOL]: 1, [DT.INT16]: 2, [DT.UINT16]: 2,
  [DT.INT32]: 4, [DT.UINT32]: 4, [DT.INT64]: 8, [DT.UINT64]: 8,
};

export const FLOAT_TYPES: ReadonlySet<number> = new Set([DT.FLOAT, DT.DOUBLE, DT.FLOAT16, DT.BFLOAT16]);

export function dataTypeName(t: number): string {
  return DT[t] ?? `type ${t}`;
}

export function tensorDims(t: TensorProto): number[] {
  return t.dims.map(Number);
}

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === TensorProto_DataLocation.EXTERNAL;
}

/** A copy of the raw bytes, aligned at offset 0 (protobuf views into the file buffer may be unaligned). */
function alignedBytes(raw: Uint8Array): ArrayBuffer {
  const buf = new ArrayBuffer(raw.byteLength);
  new Uint8Array(buf).set(raw);
  return buf;
}

/** IEEE half precision bits to a float. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bf16ToFloat(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

/**
 * The tensor's values as float32 (a fresh array the caller owns). Reads raw_data or the typed fields,
 * widening float16/bfloat16/double and integer types. External data must have been resolved by the loader.
 */
export function tensorToFloat32(t: TensorProto): Float32Array {
  if (isExternal(t)) throw new Error(`tensor ${t.name}: external data not loaded`);
  const n = numel(tensorDims(t));
  const raw = t.rawData;
  const out = new Float32Array(n);
  if (raw.byteLength > 0) {
    const size = ITEM_SIZE[t.dataType as DT];
    if (size === undefined) throw new Error(`tensor ${t.name}: cannot read ${dataTypeName(t.dataType)} as numbers`);
    if (raw.byteLength !== n * size) throw new Error(`tensor ${t.name}: raw_data has ${raw.byteLength} bytes, expected ${n * size}`);
    if (t.dataType === DT.FLOAT) {
      // straight into the result: one copy of a big weight, not an aligned temporary and then another
      new Uint8Array(out.buffer).set(raw);
      return out;
    }
    const buf = alignedBytes(raw);
    switch (t.dataType) {
      case DT.FLOAT: out.set(new Float32Array(buf)); break;
      case DT.DOUBLE: out.set(new Float64Array(buf)); break;
      case DT.FLOAT16: { const h = new Uint16Array(buf); for (let i = 0; i < n; i++) out[i] = halfToFloat(h[i]); break; }
      case DT.BFLOAT16: { const h = new Uint16Array(buf); for (let i = 0; i < n; i++) out[i] = bf16ToFloat(h[i]); break; }
      case DT.INT8: out.set(new Int8Array(buf)); break;
      case DT.UINT8: case DT.BOOL: out.set(new Uint8Array(buf)); break;
      case DT.INT16: out.set(new Int16Array(buf)); break;
      case DT.UINT16: out.set(new Uint16Array(buf)); break;
      case DT.INT32: out.set(new Int32Array(buf)); break;
      case DT.UINT32: out.set(new Uint32Array(buf)); break;
      case DT.INT64: { const v = new BigInt64Array(buf); for (let i = 0; i < n; i++) out[i] = Number(v[i]); break; }
      case DT.UINT64: { const v = new BigUint64Array(buf); for (let i = 0; i < n; i++) out[i] = Number(v[i]); break; }
    }
    return out;
  }
  const src: ArrayLike<number | bigint> =
    t.dataType === DT.FLOAT ? t.floatData
    : t.dataType === DT.DOUBLE ? t.doubleData
    : t.dataType === DT.INT64 ? t.int64Data
    : t.dataType === DT.UINT64 || t.dataType === DT.UINT32 ? t.uint64Data
    : t.int32Data; // int8/16/32, uint8/16, bool, float16 and bfloat16 bits live in int32_data
  if (src.length !== n) throw new Error(`tensor ${t.name}: holds ${src.length} values, expected ${n}`);
  if (t.dataType === DT.FLOAT16) for (let i = 0; i < n; i++) out[i] = halfToFloat(Number(src[i]));
  else if (t.dataType === DT.BFLOAT16) for (let i = 0; i < n; i++) out[i] = bf16ToFloat(Number(src[i]));
  else for (let i = 0; i < n; i++) out[i] = Number(src[i]);
  return out;
}

/**
 * The tensor's values as float32 for reading only: a view over its raw bytes, with no copy, when they are
 * float32 at an aligned offset (protobuf views into the file buffer often are); otherwise a copy as
 * tensorToFloat32 makes. Never write to the result: it may be the model's own bytes.
 */
export function readFloat32(t: TensorProto): Float32Array {
  const raw = t.rawData;
  const n = numel(tensorDims(t));
  if (t.dataType === DT.FLOAT && !isExternal(t) && raw.byteLength === n * 4 && n > 0 && raw.byteOffset % 4 === 0) {
    return new Float32Array(raw.buffer, raw.byteOffset, n);
  }
  return tensorToFloat32(t);
}

/**
 * Like setTensorFloat32, but a float32 tensor takes `values`' buffer as its raw data without a copy when
 * the array spans its whole buffer: for a freshly computed weight that the caller hands over and never
 * touches again (pruning a 100 MB model must not hold each rewritten weight twice).
 */
export function adoptTensorFloat32(t: TensorProto, values: Float32Array): void {
  if (t.dataType !== DT.FLOAT || values.byteOffset !== 0 || values.byteLength !== values.buffer.byteLength) {
    setTensorFloat32(t, values);
    return;
  }
  const n = numel(tensorDims(t));
  if (values.length !== n) throw new Error(`tensor ${t.name}: ${values.length} values for shape [${tensorDims(t)}]`);
  t.floatData = [];
  t.doubleData = [];
  t.int32Data = [];
  t.rawData = new Uint8Array(values.buffer as ArrayBuffer);
}

/** Integer tensor values (shape constants, axes) as plain numbers. */
export function tensorToInts(t: TensorProto): number[] {
  if (t.rawData.byteLength > 0 && t.dataType === DT.INT64) {
    return Array.from(new BigInt64Array(alignedBytes(t.rawData)), Number);
  }
  if (t.rawData.byteLength === 0 && t.dataType === DT.INT64) return t.int64Data.map(Number);
  return Array.from(tensorToFloat32(t));
}

/**
 * Replace a float tensor's values, keeping its name, type and other fields. Writes raw_data in the
 * tensor's own float type (float32 stays float32, float16 is rounded back to float16).
 */
export function setTensorFloat32(t: TensorProto, values: Float32Array, dims?: readonly number[]): void {
  if (dims) t.dims = dims.map(BigInt);
  const n = numel(tensorDims(t));
  if (values.length !== n) throw new Error(`tensor ${t.name}: ${values.length} values for shape [${tensorDims(t)}]`);
  t.floatData = [];
  t.doubleData = [];
  t.int32Data = [];
  switch (t.dataType) {
    case DT.FLOAT: t.rawData = new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)); break;
    case DT.DOUBLE: t.rawData = new Uint8Array(Float64Array.from(values).buffer); break;
    case DT.FLOAT16: t.rawData = new Uint8Array(Uint16Array.from(values, floatToHalf).buffer); break;
    case DT.BFLOAT16: t.rawData = new Uint8Array(Uint16Array.from(values, floatToBf16).buffer); break;
    default: throw new Error(`tensor ${t.name}: cannot write ${dataTypeName(t.dataType)} weights`);
  }
}

export function floatToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  // round to nearest even, as PyTorch does
  return ((bits + 0x7fff + ((bits >> 16) & 1)) >>> 16) & 0xffff;
}

export function floatToHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = sign | (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return half;
}

/**
 * A float tensor (float32, float16, bfloat16 or double) holding `values` rounded to `dataType`, so a
 * constant added beside a float16 model's weights is float16 too.
 */
export function makeFloatTensor(name: string, dims: readonly number[], values: Float32Array, dataType: DT = DT.FLOAT): TensorProto {
  if (!FLOAT_TYPES.has(dataType)) throw new Error(`tensor ${name}: ${dataTypeName(dataType)} is not a float type`);
  const t = create(TensorProtoSchema, { name, dataType, dims: dims.map(BigInt) });
  setTensorFloat32(t, values);
  return t;
}

/** The integer element types a rewrite writes: int64/int32 shape and index constants, int8/uint8/int32 quantized values. */
export type IntType = DT.INT64 | DT.INT32 | DT.INT8 | DT.UINT8;

/** An integer tensor: int64 (default) or int32 as shape, axes and index constants are stored; int8, uint8, int32 as quantized weights, zero points and biases are. */
export function makeIntTensor(name: string, dims: readonly number[], values: ArrayLike<number>, dataType: IntType = DT.INT64): TensorProto {
  const array = Array.from(values);
  const raw =
    dataType === DT.INT64 ? new Uint8Array(BigInt64Array.from(array, (v) => BigInt(v)).buffer)
    : dataType === DT.INT32 ? new Uint8Array(Int32Array.from(array).buffer)
    : dataType === DT.INT8 ? new Uint8Array(Int8Array.from(array).buffer)
    : Uint8Array.from(array);
  return create(TensorProtoSchema, { name, dataType, dims: dims.map(BigInt), rawData: raw });
}

export function makeInt64Tensor(name: string, dims: readonly number[], values: readonly number[]): TensorProto {
  return makeIntTensor(name, dims, values, DT.INT64);
}
