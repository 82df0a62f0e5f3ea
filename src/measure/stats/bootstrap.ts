import { quantileSorted } from 'simple-statistics';
import { seededRandom } from '../../util/random.js';
import type { Interval } from './wilson.js';

/** The default bootstrap seed (recorded in the ledger's reproducibility record). */
export const BOOTSTRAP_SEED = 0x5eed;

export interface BootstrapOptions {
  confidence?: number;
  resamples?: number;
  seed?: number;
}

/**
 * Percentile bootstrap over `n` units: `statistic` gets the resampled unit indices (with repetition)
 * and returns one number. Units are samples for quality metrics and latency rounds for timings, so a
 * statistic that reads two models at the same index keeps their pairing. NaN replicates are dropped.
 */
export function bootstrapInterval(n: number, statistic: (indices: Int32Array) => number, opts: BootstrapOptions = {}): Interval {
  const confidence = opts.confidence ?? 0.95;
  const resamples = opts.resamples ?? 1000;
  const random = seededRandom(opts.seed ?? BOOTSTRAP_SEED);
  const indices = new Int32Array(n);
  const values: number[] = [];
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) indices[i] = Math.floor(random() * n);
    const v = statistic(indices);
    if (Number.isFinite(v)) values.push(v);
  }
  if (values.length === 0) return [NaN, NaN];
  values.sort((a, b) => a - b);
  const alpha = (1 - confidence) / 2;
  return [quantileSorted(values, alpha), quantileSorted(values, 1 - alpha)];
}

/** Quantile of the values at `indices` (a scratch buffer is reused by the caller's closure). */
export function quantileAt(values: ArrayLike<number>, indices: Int32Array, p: number, scratch: Float64Array): number {
  for (let i = 0; i < indices.length; i++) scratch[i] = values[indices[i]];
  scratch.sort();
  return quantileSorted(scratch as unknown as number[], p);
}

/** Bootstrap interval of one quantile (p50, p95, p99) of a sample. */
export function quantileInterval(values: readonly number[], p: number, opts: BootstrapOptions = {}): Interval {
  const scratch = new Float64Array(values.length);
  return bootstrapInterval(values.length, (idx) => quantileAt(values, idx, p, scratch), opts);
}

export function meanInterval(values: readonly number[], opts: BootstrapOptions = {}): Interval {
  return bootstrapInterval(values.length, (idx) => {
    let s = 0;
    for (let i = 0; i < idx.length; i++) s += values[idx[i]];
    return s / idx.length;
  }, opts);
}
