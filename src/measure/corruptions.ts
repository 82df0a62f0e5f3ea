import type { Dataset, InputArray } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { CORRUPTIONS, IMAGE_CORRUPTIONS, type CorruptionKind } from '../config/schema.js';
import { seededRandom } from '../util/random.js';
import { floatToHalf, halfToFloat } from '../onnx/tensor.js';

/**
 * Built-in synthetic distribution shifts, applied to a copy of the evaluation set. Severities 1..5
 * follow the spirit of ImageNet-C (Hendrycks & Dietterich 2019), scaled to the data's own spread
 * (inputs are often normalised, so absolute pixel units would mean nothing). Every corruption is
 * seeded by its name and severity: the same spec always gives the same set.
 */
export interface Corruption {
  kind: CorruptionKind;
  severity: 1 | 2 | 3 | 4 | 5;
}

/** What each severity means, per kind (documented in the README). */
export const SEVERITIES: Record<CorruptionKind, readonly number[]> = {
  /** noise sd as a multiple of the input's sd (ImageNet-C's 0.08..0.38 on [0,1] pixels is ~0.3..1.3 sd) */
  'gaussian-noise': [0.25, 0.4, 0.6, 0.85, 1.2],
  /** contrast kept: x' = mean + c·(x − mean), per sample and channel */
  contrast: [0.75, 0.6, 0.45, 0.3, 0.15],
  /** added offset as a fraction of the input's range (max − min) */
  brightness: [0.1, 0.2, 0.3, 0.4, 0.5],
  /** Gaussian blur sigma, in pixels */
  blur: [0.5, 0.75, 1, 1.5, 2],
  /** noise sd as a multiple of each feature's sd */
  'feature-noise': [0.1, 0.2, 0.3, 0.45, 0.6],
  /** fraction of features per sample replaced by the feature's mean */
  'feature-dropout': [0.1, 0.2, 0.3, 0.4, 0.5],
};

export const corruptionName = (c: Corruption): string => `${c.kind}:${c.severity}`;

/** `gaussian-noise:2` -> { kind, severity }; `where` names the flag or config key for the message. */
export function parseCorruption(text: string, where: string): Corruption {
  const m = /^([a-z-]+):([1-5])$/.exec(text.trim());
  if (!m || !(CORRUPTIONS as readonly string[]).includes(m[1])) {
    throw new UserError(`${where} ${text}: expected KIND:SEVERITY with KIND one of ${CORRUPTIONS.join(', ')} and SEVERITY 1-5, e.g. gaussian-noise:2`);
  }
  return { kind: m[1] as CorruptionKind, severity: Number(m[2]) as Corruption['severity'] };
}

function seedOf(c: Corruption): number {
  let h = 2166136261;
  for (const ch of corruptionName(c)) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}

function gaussian(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

function moments(x: Float32Array | Float64Array): { mean: number; sd: number; min: number; max: number } {
  let s = 0;
  let s2 = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) {
    s += x[i];
    s2 += x[i] * x[i];
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
  }
  const mean = s / x.length;
  return { mean, sd: Math.sqrt(Math.max(0, s2 / x.length - mean * mean)), min, max };
}

function blurPlane(x: Float32Array | Float64Array, offset: number, h: number, w: number, sigma: number, tmp: Float64Array): void {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const sum = k.reduce((a, b) => a + b, 0);
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  const clamp = (v: number, n: number) => (v < 0 ? 0 : v >= n ? n - 1 : v);
  for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < w; xx++) {
      let acc = 0;
      for (let i = -r; i <= r; i++) acc += k[i + r] * x[offset + y * w + clamp(xx + i, w)];
      tmp[y * w + xx] = acc;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < w; xx++) {
      let acc = 0;
      for (let i = -r; i <= r; i++) acc += k[i + r] * tmp[clamp(y + i, h) * w + xx];
      x[offset + y * w + xx] = acc;
    }
  }
}

function corruptArray(name: string, arr: InputArray, c: Corruption, where: string): InputArray {
  if (arr.dtype === 'float16') {
    // corrupted in float32 and rounded back: the model is fed its own type, as for clean data
    const wide = corruptArray(name, { dtype: 'float32', dims: arr.dims, data: Float32Array.from(arr.data as Uint16Array, halfToFloat) }, c, where);
    return { dtype: 'float16', dims: arr.dims, data: Uint16Array.from(wide.data as Float32Array, floatToHalf) };
  }
  if (arr.dtype !== 'float32' && arr.dtype !== 'float64') {
    throw new UserError(`${where}: corruption ${corruptionName(c)} needs float inputs but input '${name}' is ${arr.dtype}; remove it from corruptions`);
  }
  const image = (IMAGE_CORRUPTIONS as readonly string[]).includes(c.kind);
  if (image && arr.dims.length !== 4) {
    throw new UserError(`${where}: corruption ${corruptionName(c)} is for images [N, C, H, W] but input '${name}' has ${arr.dims.length} dims; use feature-noise or feature-dropout for tabular inputs`);
  }
  const src = arr.data as Float32Array | Float64Array;
  const x = src.slice();
  const level = SEVERITIES[c.kind][c.severity - 1];
  const random = seededRandom(seedOf(c));
  const normal = gaussian(random);
  const n = arr.dims[0];
  const per = x.length / n;
  const stats = moments(src);
  switch (c.kind) {
    case 'gaussian-noise':
      for (let i = 0; i < x.length; i++) x[i] += level * stats.sd * normal();
      break;
    case 'brightness':
      for (let i = 0; i < x.length; i++) x[i] += level * (stats.max - stats.min);
      break;
    case 'contrast':
    case 'blur': {
      const [, channels, h, w] = arr.dims;
      const plane = h * w;
      const tmp = new Float64Array(plane);
      for (let p = 0; p < n * channels; p++) {
        const off = p * plane;
        if (c.kind === 'blur') {
          blurPlane(x, off, h, w, level, tmp);
        } else {
          let mean = 0;
          for (let i = 0; i < plane; i++) mean += x[off + i];
          mean /= plane;
          for (let i = 0; i < plane; i++) x[off + i] = mean + level * (x[off + i] - mean);
        }
      }
      break;
    }
    case 'feature-noise':
    case 'feature-dropout': {
      const mean = new Float64Array(per);
      const sd = new Float64Array(per);
      for (let s = 0; s < n; s++) for (let f = 0; f < per; f++) mean[f] += src[s * per + f] / n;
      for (let s = 0; s < n; s++) for (let f = 0; f < per; f++) sd[f] += (src[s * per + f] - mean[f]) ** 2 / n;
      for (let f = 0; f < per; f++) sd[f] = Math.sqrt(sd[f]);
      for (let s = 0; s < n; s++) {
        for (let f = 0; f < per; f++) {
          const i = s * per + f;
          if (c.kind === 'feature-noise') x[i] += level * sd[f] * normal();
          else if (random() < level) x[i] = mean[f];
        }
      }
      break;
    }
  }
  return { dtype: arr.dtype, dims: [...arr.dims], data: x };
}

/** A corrupted copy of a labelled set; labels are shared (the corruption does not change the class). */
export function corruptDataset(ds: Dataset, c: Corruption): Dataset {
  const inputs = new Map<string, InputArray>();
  for (const [name, arr] of ds.inputs) inputs.set(name, corruptArray(name, arr, c, `corruptions`));
  return { ...ds, path: `${ds.path}#${corruptionName(c)}`, inputs };
}

/** The configured corruptions of the evaluation set, as named shift sets (`gaussian-noise:2`). */
export function corruptionSets(data: Dataset, specs: readonly string[]): { name: string; data: Dataset }[] {
  return specs.map((text) => {
    const c = parseCorruption(text, 'corruptions');
    return { name: corruptionName(c), data: corruptDataset(data, c) };
  });
}
