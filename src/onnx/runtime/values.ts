import { halfToFloat } from '../tensor.js';

/** What an onnxruntime tensor exposes that reading its values needs (kept structural, so tests can pass plain objects). */
export interface RuntimeValues {
  type: string;
  data: unknown;
  dims: readonly number[];
}

/**
 * A runtime tensor's values as float32, read by its real element type: onnxruntime-node returns float16
 * as raw Uint16Array bits (Float16Array where the platform has one), so reading `data` as a Float32Array
 * would see bit patterns, not numbers. Float32 data is returned as is (a view onnxruntime may reuse after
 * dispose: copy what must outlive the tensor).
 */
export function floatValues(t: RuntimeValues): Float32Array {
  const data = t.data as ArrayLike<number | bigint>;
  switch (t.type) {
    case 'float32':
      return t.data as Float32Array;
    case 'float16': {
      const out = new Float32Array(data.length);
      if (t.data instanceof Uint16Array) for (let i = 0; i < out.length; i++) out[i] = halfToFloat(t.data[i]);
      else for (let i = 0; i < out.length; i++) out[i] = Number(data[i]);
      return out;
    }
    case 'float64':
    case 'int8':
    case 'uint8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
    case 'bool':
      return Float32Array.from(data as ArrayLike<number>);
    case 'int64':
    case 'uint64': {
      const out = new Float32Array(data.length);
      for (let i = 0; i < out.length; i++) out[i] = Number(data[i]);
      return out;
    }
    default:
      throw new Error(`cannot read an onnxruntime tensor of type ${t.type} as numbers`);
  }
}

/** Like floatValues, but always a fresh array the caller owns. */
export function copyFloatValues(t: RuntimeValues): Float32Array {
  const v = floatValues(t);
  return v === t.data ? Float32Array.from(v) : v;
}
