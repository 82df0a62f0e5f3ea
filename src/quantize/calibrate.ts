/**
 * Activation range calibrators over typed arrays. Each tensor's range is collected in streaming form
 * (one batch at a time, never the whole calibration set in memory): min-max needs one pass; percentile
 * and entropy need the tensor's extent first (pass one) and fixed-width histograms (pass two), so a
 * histogram never has to be re-binned as batches arrive.
 */

export const CALIBRATORS = ['minmax', 'percentile', 'entropy'] as const;
export type CalibratorName = (typeof CALIBRATORS)[number];

/** A float range [min, max] that the quantizer maps onto the integer grid. */
export interface Range {
  min: number;
  max: number;
}

/** Bins of the |x| histogram; 2048 is what TensorRT's and onnxruntime's entropy calibrators use. */
export const HISTOGRAM_BINS = 2048;
/** Share given to a histogram bin Q leaves empty where P has mass (onnxruntime's smoothing epsilon). */
const SMOOTHING = 1e-4;

/** onnxruntime's default percentile: clips the top 0.001% of |x|. */
export const DEFAULT_PERCENTILE = 99.999;

/** Running minimum and maximum of a tensor over batches (NaN ignored). */
export class MinMax {
  min = Infinity;
  max = -Infinity;
  add(values: ArrayLike<number>): void {
    let lo = this.min;
    let hi = this.max;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    this.min = lo;
    this.max = hi;
  }
  range(): Range {
    return Number.isFinite(this.min) ? { min: this.min, max: this.max } : { min: 0, max: 0 };
  }
}

/** Histogram of magnitudes over [0, extent] in `bins` equal bins; magnitudes beyond extent land in the last bin. */
export class MagnitudeHistogram {
  readonly counts: Float64Array;
  readonly width: number;
  total = 0;
  constructor(readonly extent: number, bins = HISTOGRAM_BINS) {
    this.counts = new Float64Array(bins);
    this.width = extent > 0 ? extent / bins : 1;
  }
  addMagnitude(m: number): void {
    const b = Math.floor(m / this.width);
    this.counts[b >= this.counts.length ? this.counts.length - 1 : b]++;
    this.total++;
  }
}

/**
 * A tensor's distribution as two magnitude histograms, one per sign, so a tensor whose sides differ
 * (a normalised image: a dense background spike at -0.8 and sparse strokes up to 2.0) is clipped on
 * each side by that side's own tail, never by the other side's mass.
 */
export class SignedHistogram {
  readonly negative: MagnitudeHistogram;
  readonly positive: MagnitudeHistogram;
  zeros = 0;
  constructor(readonly observed: Range, bins = HISTOGRAM_BINS) {
    this.negative = new MagnitudeHistogram(Math.max(0, -observed.min), bins);
    this.positive = new MagnitudeHistogram(Math.max(0, observed.max), bins);
  }
  add(values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v > 0) this.positive.addMagnitude(v);
      else if (v < 0) this.negative.addMagnitude(-v);
      else if (v === 0) this.zeros++;
    }
  }
  get total(): number {
    return this.negative.total + this.positive.total + this.zeros;
  }
}

/**
 * The magnitude above which at most `tail` samples of the side lie (the upper edge of the first bin,
 * from the top, whose cumulative count from the top exceeds `tail`).
 */
export function tailThreshold(h: MagnitudeHistogram, tail: number): number {
  let cum = 0;
  for (let i = h.counts.length - 1; i >= 0; i--) {
    cum += h.counts[i];
    if (cum > tail) return (i + 1) * h.width;
  }
  return 0;
}

/**
 * Percentile clipping as onnxruntime's asymmetric percentile calibrator does it: (100 - percentile) / 2
 * percent of all samples is cut from each end of the distribution.
 */
export function percentileRange(h: SignedHistogram, percentile = DEFAULT_PERCENTILE): Range {
  const tail = ((100 - percentile) / 200) * h.total;
  return {
    min: h.negative.total > 0 ? -Math.min(h.negative.extent, tailThreshold(h.negative, tail)) : h.observed.min,
    max: h.positive.total > 0 ? Math.min(h.positive.extent, tailThreshold(h.positive, tail)) : h.observed.max,
  };
}

/**
 * Entropy calibration per side: each side's clipping threshold minimises KL divergence on that side's
 * magnitudes, with the share of the 255 uint8 steps the side's extent would get.
 */
export function entropyRange(h: SignedHistogram): Range {
  const neg = h.negative.extent;
  const pos = h.positive.extent;
  const side = (m: MagnitudeHistogram, extent: number, fallback: number): number => {
    if (m.total === 0) return fallback;
    const levels = Math.max(8, Math.min(255, Math.round((255 * extent) / (neg + pos))));
    return Math.min(extent, entropyThreshold(m, levels));
  };
  return { min: -side(h.negative, neg, -h.observed.min), max: side(h.positive, pos, h.observed.max) };
}

/**
 * The magnitude threshold that minimises KL(P || Q), where P is the histogram clipped at the threshold
 * (outliers folded into the last kept bin) and Q is the clipped histogram without them, quantized to
 * `levels` levels (Migacz, "8-bit inference with TensorRT", 2017). `levels` is how many integer steps
 * the kept range gets.
 */
export function entropyThreshold(h: MagnitudeHistogram, levels: number): number {
  const counts = h.counts;
  const bins = counts.length;
  if (bins <= levels) return h.extent;
  let total = 0;
  for (let i = 0; i < bins; i++) total += counts[i];
  if (total === 0) return 0;
  // suffix sums: the outlier mass beyond a candidate threshold in O(1)
  const beyond = new Float64Array(bins + 1);
  for (let i = bins - 1; i >= 0; i--) beyond[i] = beyond[i + 1] + counts[i];
  let best = bins;
  let bestKl = Infinity;
  const p = new Float64Array(bins);
  const q = new Float64Array(bins);
  for (let kept = levels; kept <= bins; kept++) {
    // P: the first `kept` bins, outliers folded into the last one
    for (let i = 0; i < kept; i++) p[i] = counts[i];
    p[kept - 1] += beyond[kept];
    // Q: the same bins without the outliers, each of `levels` chunks spread evenly over the chunk's
    // nonzero bins; the outliers Q lacks are what makes clipping too early cost divergence
    const perLevel = kept / levels;
    for (let j = 0; j < levels; j++) {
      const start = Math.floor(j * perLevel);
      const end = j === levels - 1 ? kept : Math.floor((j + 1) * perLevel);
      let mass = 0;
      let nonzero = 0;
      for (let i = start; i < end; i++) {
        mass += counts[i];
        if (counts[i] > 0) nonzero++;
      }
      const each = nonzero > 0 ? mass / nonzero : 0;
      for (let i = start; i < end; i++) q[i] = counts[i] > 0 ? each : 0;
    }
    let pMass = 0;
    let qMass = 0;
    for (let i = 0; i < kept; i++) {
      pMass += p[i];
      qMass += q[i];
    }
    if (qMass === 0) continue;
    let kl = 0;
    for (let i = 0; i < kept; i++) {
      if (p[i] === 0) continue;
      // P mass where Q has none (outliers folded into an empty bin) is smoothed to a small share, as
      // onnxruntime's calibrator does, so a far clip costs divergence in proportion instead of infinity
      const pi = p[i] / pMass;
      kl += pi * Math.log(pi / Math.max(q[i] / qMass, SMOOTHING));
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = kept;
    }
  }
  return best * h.width;
}

/**
 * One calibrator's state for many tensors at once. Call `observe` with every batch of pass one; when
 * `needsSecondPass`, call `startSecondPass` and feed the same batches to `observe` again; then `ranges`.
 */
export class RangeCalibrator {
  private readonly minMax = new Map<string, MinMax>();
  private histograms: Map<string, SignedHistogram> | undefined;

  constructor(readonly method: CalibratorName, readonly percentile = DEFAULT_PERCENTILE, readonly bins = HISTOGRAM_BINS) {}

  get needsSecondPass(): boolean {
    return this.method !== 'minmax';
  }

  get inSecondPass(): boolean {
    return this.histograms !== undefined;
  }

  observe(tensor: string, values: ArrayLike<number>): void {
    if (this.histograms) {
      this.histograms.get(tensor)?.add(values);
      return;
    }
    let m = this.minMax.get(tensor);
    if (!m) {
      m = new MinMax();
      this.minMax.set(tensor, m);
    }
    m.add(values);
  }

  startSecondPass(): void {
    this.histograms = new Map();
    for (const [name, m] of this.minMax) this.histograms.set(name, new SignedHistogram(m.range(), this.bins));
  }

  ranges(): Map<string, Range> {
    const out = new Map<string, Range>();
    for (const [name, m] of this.minMax) {
      const observed = m.range();
      const h = this.histograms?.get(name);
      if (this.method === 'minmax' || !h) {
        out.set(name, observed);
        continue;
      }
      out.set(name, this.method === 'percentile' ? percentileRange(h, this.percentile) : entropyRange(h));
    }
    return out;
  }
}
