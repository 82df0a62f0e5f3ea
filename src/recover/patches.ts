import type { Activation } from './session.js';
import type { LinearLayer } from './layers.js';
import { seededRandom } from '../measure/stats/random.js';

/** `count` of `total` positions, stratified (one random pick per equal stretch), ascending. */
export function samplePositions(total: number, count: number, seed = 1): Int32Array {
  if (count >= total) return Int32Array.from({ length: total }, (_, i) => i);
  // seeded, so dense and pruned patches come from the same positions
  const next = seededRandom(seed);
  const out = new Int32Array(count);
  for (let k = 0; k < count; k++) out[k] = Math.min(total - 1, Math.floor(((k + next()) * total) / count));
  return out;
}

/**
 * The layer's input as rows of its weight's column space, one matrix per group: [patches x cols],
 * plus a trailing column of ones when `withBias` (the bias is refit as one more weight). Conv inputs
 * are unfolded (im2col) at a stratified sample of at most `maxPatches` output positions, because all
 * 512 images x every position would not fit the Gram budget and neighbouring positions are redundant.
 */
export function layerPatches(layer: LinearLayer, act: Activation, withBias: boolean, maxPatches: number): { patches: number; perGroup: Float32Array[]; cols: number } {
  const extra = withBias ? 1 : 0;
  if (!layer.conv) {
    const k = act.dims[act.dims.length - 1];
    const total = act.data.length / k;
    const pos = samplePositions(total, maxPatches);
    const cols = k + extra;
    const m = new Float32Array(pos.length * cols);
    for (let p = 0; p < pos.length; p++) {
      m.set(act.data.subarray(pos[p] * k, pos[p] * k + k), p * cols);
      if (withBias) m[p * cols + k] = 1;
    }
    return { patches: pos.length, perGroup: [m], cols };
  }
  const [n, c, h, w] = act.dims;
  const { kernel: [kh, kw], strides: [sh, sw], pads: [pt, pl, pb, pr], dilations: [dh, dw] } = layer.conv;
  const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  const cg = c / layer.groups;
  const pos = samplePositions(n * oh * ow, maxPatches);
  const cols = cg * kh * kw + extra;
  const perGroup: Float32Array[] = [];
  for (let g = 0; g < layer.groups; g++) perGroup.push(new Float32Array(pos.length * cols));
  for (let p = 0; p < pos.length; p++) {
    const s = Math.floor(pos[p] / (oh * ow));
    const rem = pos[p] - s * oh * ow;
    const oy = Math.floor(rem / ow);
    const ox = rem - oy * ow;
    for (let g = 0; g < layer.groups; g++) {
      const m = perGroup[g];
      let o = p * cols;
      for (let ci = 0; ci < cg; ci++) {
        const base = (s * c + g * cg + ci) * h * w;
        for (let ky = 0; ky < kh; ky++) {
          const y = oy * sh - pt + ky * dh;
          for (let kx = 0; kx < kw; kx++) {
            const x = ox * sw - pl + kx * dw;
            m[o++] = y >= 0 && y < h && x >= 0 && x < w ? act.data[base + y * w + x] : 0;
          }
        }
      }
      if (withBias) m[o] = 1;
    }
  }
  return { patches: pos.length, perGroup, cols };
}
