/**
 * Quantization arithmetic as onnxruntime's own quantizer does it (onnxruntime/python/tools/quantization):
 * asymmetric 8-bit activations (uint8 or int8) whose range always contains 0, symmetric int8 weights per
 * output channel with zero point 0, int32 biases at scale input_scale * weight_scale.
 */
import type { Range } from './calibrate.js';

export interface QParams {
  /** float32 scale */
  scale: number;
  zeroPoint: number;
}

/** Integer grid of the weights: 8-bit [-127, 127], or onnxruntime's reduce_range [-64, 64] (7 bits of magnitude). */
export type WeightBits = 8 | 7;

export function weightQMax(bits: WeightBits): number {
  return bits === 8 ? 127 : 64;
}

/** numpy's rint: round half to even, as onnxruntime's quantizer rounds. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Element type of the quantized activations. Both grids hold the same 256 real values for a range
 * (int8's zero point is uint8's minus 128), so the choice changes which integer kernels run, not what
 * they compute.
 */
export type ActivationType = 'uint8' | 'int8';

/** Added to a uint8 zero point to give the int8 one of the same grid. */
const INT8_OFFSET: Record<ActivationType, number> = { uint8: 0, int8: -128 };

/**
 * Parameters of an activation range. The range is widened to contain 0, so 0 (padding, ReLU's
 * floor) is represented exactly; a degenerate range gets scale 1.
 */
export function activationParams(range: Range, type: ActivationType = 'uint8'): QParams {
  const lo = Math.min(range.min, 0);
  const hi = Math.max(range.max, 0);
  if (!(hi > lo)) return { scale: 1, zeroPoint: INT8_OFFSET[type] };
  const scale = Math.fround((hi - lo) / 255);
  const zeroPoint = Math.min(255, Math.max(0, roundHalfEven(-lo / scale)));
  return { scale, zeroPoint: zeroPoint + INT8_OFFSET[type] };
}

export interface QuantizedWeight {
  values: Int8Array;
  /** one per channel along `axis` (one in all when per-tensor) */
  scales: Float32Array;
  axis: number;
}

/**
 * Symmetric int8 quantization of a float weight, per channel along `axis` or per tensor (`axis` -1).
 * Each scale is max|w| / qmax of its channel; an all-zero channel gets scale 1 so dequantization
 * stays finite.
 */
export function quantizeWeight(values: Float32Array, dims: readonly number[], axis: number, bits: WeightBits): QuantizedWeight {
  const qmax = weightQMax(bits);
  const channels = axis < 0 ? 1 : dims[axis];
  // elements of one channel form `outer` runs of `inner` consecutive values
  const inner = axis < 0 ? values.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = axis < 0 ? 1 : dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let absMax = 0;
    for (let o = 0; o < outer; o++) {
      const base = (o * channels + c) * inner;
      for (let i = 0; i < inner; i++) {
        const a = Math.abs(values[base + i]);
        if (a > absMax) absMax = a;
      }
    }
    scales[c] = absMax > 0 ? Math.fround(absMax / qmax) : 1;
  }
  const q = new Int8Array(values.length);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      const s = scales[c];
      for (let i = 0; i < inner; i++) {
        const v = roundHalfEven(values[base + i] / s);
        q[base + i] = v > qmax ? qmax : v < -qmax ? -qmax : v;
      }
    }
  }
  return { values: q, scales, axis };
}

const INT32_MAX = 2 ** 31 - 1;

/** A bias as int32 at scale inputScale * weightScale[c] (zero point 0), as the integer kernels add it. */
export function quantizeBias(bias: Float32Array, inputScale: number, weightScales: Float32Array): { values: Int32Array; scales: Float32Array } {
  const scales = new Float32Array(bias.length);
  const values = new Int32Array(bias.length);
  for (let c = 0; c < bias.length; c++) {
    const s = Math.fround(inputScale * weightScales[weightScales.length === 1 ? 0 : c]);
    scales[c] = s;
    const v = roundHalfEven(bias[c] / s);
    values[c] = Math.max(-INT32_MAX, Math.min(INT32_MAX, v));
  }
  return { values, scales };
}

/** What quantize-then-dequantize does to one value: the error the rewrite introduces. */
export function fakeQuantize(x: number, p: QParams, qmin: number, qmax: number): number {
  const q = Math.min(qmax, Math.max(qmin, roundHalfEven(x / p.scale) + p.zeroPoint));
  return (q - p.zeroPoint) * p.scale;
}
