import { describe, expect, it } from 'vitest';
import { entropyRange, MinMax, percentileRange, RangeCalibrator, SignedHistogram } from '../../src/quantize/calibrate.js';
import { seededWeights } from '../support/buildModel.js';

/** A bulk of |x| < 1 with a few outliers at ±50: what clipping calibrators exist for. */
function bulkWithOutliers(n: number, outliers: number): Float32Array {
  const v = seededWeights(n, 7);
  for (let i = 0; i < outliers; i++) v[(i * 9973) % n] = i % 2 ? 50 : -50;
  return v;
}

function histogramOf(values: Float32Array): SignedHistogram {
  const m = new MinMax();
  m.add(values);
  const h = new SignedHistogram(m.range());
  h.add(values);
  return h;
}

describe('activation range calibrators', () => {
  it('min-max streamed over batches equals the extent of the whole set', () => {
    const v = bulkWithOutliers(10_000, 3);
    const c = new RangeCalibrator('minmax');
    for (let s = 0; s < v.length; s += 1000) c.observe('t', v.subarray(s, s + 1000));
    expect(c.needsSecondPass).toBe(false);
    expect(c.ranges().get('t')).toEqual({ min: -50, max: 50 });
  });

  it('percentile cuts a rare tail and leaves a distribution without one alone', () => {
    const clipped = percentileRange(histogramOf(bulkWithOutliers(1_000_000, 4)), 99.999);
    expect(clipped.max).toBeLessThan(1.1);
    expect(clipped.min).toBeGreaterThan(-1.1);
    const plain = seededWeights(100_000, 3);
    const r = percentileRange(histogramOf(plain), 99.999);
    expect(r.max).toBeGreaterThan(0.99);
    expect(r.min).toBeLessThan(-0.99);
  });

  it('entropy clips far outliers but keeps the bulk of each side', () => {
    const r = entropyRange(histogramOf(bulkWithOutliers(200_000, 20)));
    expect(r.max).toBeGreaterThan(0.9);
    expect(r.max).toBeLessThan(50);
    expect(r.min).toBeLessThan(-0.9);
    expect(r.min).toBeGreaterThan(-50);
  });

  it('entropy does not clip one side by the other side\'s mass (normalised image: dense background, sparse strokes)', () => {
    // 90% of pixels at the background -0.81, strokes spread up to +2.02
    const n = 100_000;
    const v = new Float32Array(n);
    const u = seededWeights(n, 11);
    for (let i = 0; i < n; i++) v[i] = i % 10 === 0 ? 2.02 * Math.abs(u[i]) : -0.81;
    const r = entropyRange(histogramOf(v));
    expect(r.min).toBeCloseTo(-0.81, 2);
    expect(r.max).toBeGreaterThan(1.5);
  });

  it('histogram calibrators ask for a second pass and clip only in it', () => {
    const v = bulkWithOutliers(1_000_000, 4);
    const c = new RangeCalibrator('percentile');
    c.observe('t', v);
    expect(c.needsSecondPass).toBe(true);
    c.startSecondPass();
    c.observe('t', v);
    const r = c.ranges().get('t')!;
    expect(r.max).toBeLessThan(1.1);
  });
});
