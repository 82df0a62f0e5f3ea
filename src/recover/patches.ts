import type { Activation } from '../onnx/runtime/session.js';
import type { LinearLayer } from './layers.js';
import { seededRandom } from '../util/random.js';

/** The seed reconstruction samples patch positions with (recorded in the ledger's reproducibility record). */
export const PATCH_SEED = 1;

/** `count` of `total` positions, stratified (one random pick per equal stretch), ascending. */
export function samplePositions(total: number, count: number, seed = PATCH_SEED): Int32Array {
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
  const sampler = new PatchSampler(layer, act.dims.slice(1), act.dims[0], withBias, maxPatches);
  sampler.add(act.data, 0, act.dims[0]);
  return sampler.result();
}

/**
 * layerPatches fed batch by batch: the positions are chosen up front over all `count` samples (the
 * same ones layerPatches picks), and each batch contributes the patches that fall inside it, so the
 * whole activation never has to exist at once.
 */
export class PatchSampler {
  private readonly pos: Int32Array;
  private readonly perGroup: Float32Array[] = [];
  readonly cols: number;
  /** output positions per sample */
  private readonly per: number;
  private next = 0;

  constructor(
    private readonly layer: LinearLayer,
    /** one sample's activation dims (without the batch axis) */
    private readonly sampleDims: readonly number[],
    count: number,
    private readonly withBias: boolean,
    maxPatches: number,
  ) {
    const extra = withBias ? 1 : 0;
    if (!layer.conv) {
      const k = sampleDims[sampleDims.length - 1];
      this.per = sampleDims.reduce((a, d) => a * d, 1) / k;
      this.cols = k + extra;
    } else {
      const [c, h, w] = sampleDims;
      const { kernel: [kh, kw], strides: [sh, sw], pads: [pt, , pb], dilations: [dh, dw] } = layer.conv;
      const pl = layer.conv.pads[1];
      const pr = layer.conv.pads[3];
      const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
      const ow = Math.floor((w + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
      this.per = oh * ow;
      this.ow = ow;
      this.cols = (c / layer.groups) * kh * kw + extra;
    }
    this.pos = samplePositions(count * this.per, maxPatches);
    const groups = layer.conv ? layer.groups : 1;
    for (let g = 0; g < groups; g++) this.perGroup.push(new Float32Array(this.pos.length * this.cols));
  }

  private ow = 0;

  /** Samples [first, first + samples) of the activation, [samples, ...sampleDims] row-major. */
  add(data: Float32Array, first: number, samples: number): void {
    const end = (first + samples) * this.per;
    const { pos, cols, withBias } = this;
    if (!this.layer.conv) {
      const k = this.sampleDims[this.sampleDims.length - 1];
      const m = this.perGroup[0];
      for (; this.next < pos.length && pos[this.next] < end; this.next++) {
        const r = pos[this.next] - first * this.per;
        m.set(data.subarray(r * k, r * k + k), this.next * cols);
        if (withBias) m[this.next * cols + k] = 1;
      }
      return;
    }
    const [c, h, w] = this.sampleDims;
    const { kernel: [kh, kw], strides: [sh, sw], pads: [pt, pl], dilations: [dh, dw] } = this.layer.conv;
    const cg = c / this.layer.groups;
    const ow = this.ow;
    for (; this.next < pos.length && pos[this.next] < end; this.next++) {
      const p = this.next;
      const s = Math.floor(pos[p] / this.per);
      const rem = pos[p] - s * this.per;
      const local = s - first;
      const oy = Math.floor(rem / ow);
      const ox = rem - oy * ow;
      for (let g = 0; g < this.layer.groups; g++) {
        const m = this.perGroup[g];
        let o = p * cols;
        for (let ci = 0; ci < cg; ci++) {
          const base = (local * c + g * cg + ci) * h * w;
          for (let ky = 0; ky < kh; ky++) {
            const y = oy * sh - pt + ky * dh;
            for (let kx = 0; kx < kw; kx++) {
              const x = ox * sw - pl + kx * dw;
              m[o++] = y >= 0 && y < h && x >= 0 && x < w ? data[base + y * w + x] : 0;
            }
          }
        }
        if (withBias) m[o] = 1;
      }
    }
  }

  result(): { patches: number; perGroup: Float32Array[]; cols: number } {
    if (this.next !== this.pos.length) throw new Error(`PatchSampler: ${this.next} of ${this.pos.length} patches filled (batches missing)`);
    return { patches: this.pos.length, perGroup: this.perGroup, cols: this.cols };
  }
}
