import { describe, expect, it } from 'vitest';
import { bootstrapInterval, meanInterval, quantileInterval } from '../../src/measure/stats/bootstrap.js';
import { binomialHalfCdf, logGamma } from '../../src/measure/stats/binomial.js';
import { mcnemarExact, minSamplesForDrop, pairedDifferenceInterval, pairedTable } from '../../src/measure/stats/mcnemar.js';
import { normalQuantile } from '../../src/measure/stats/normal.js';
import { seededRandom } from '../../src/util/random.js';
import { wilsonInterval } from '../../src/measure/stats/wilson.js';

describe('normalQuantile', () => {
  // Python 3 statistics.NormalDist().inv_cdf
  it.each([
    [0.975, 1.959963984540054],
    [0.995, 2.5758293035489],
    [0.9, 1.2815515655446008],
    [0.5, 0],
  ])('Φ⁻¹(%f) = %f', (p, z) => {
    expect(normalQuantile(p)).toBeCloseTo(z, 7);
    expect(normalQuantile(1 - p)).toBeCloseTo(-z, 7);
  });
});

describe('wilsonInterval', () => {
  // Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (score interval, no CC)
  it.each([
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0.0, 0.1611],
    [1, 29, 0.0061, 0.1718],
  ])('%i/%i -> [%f, %f]', (x, n, lo, hi) => {
    const [l, h] = wilsonInterval(x, n, 0.95);
    expect(l).toBeCloseTo(lo, 4);
    expect(h).toBeCloseTo(hi, 4);
  });
  it('stays in [0, 1] and widens with confidence', () => {
    expect(wilsonInterval(29, 29)[1]).toBe(1);
    expect(wilsonInterval(29, 29)[0]).toBeCloseTo(0.8830302015, 8); // closed form evaluated in Python
    const a = wilsonInterval(50, 100, 0.9);
    const b = wilsonInterval(50, 100, 0.99);
    expect(b[0]).toBeLessThan(a[0]);
    expect(b[1]).toBeGreaterThan(a[1]);
    expect(wilsonInterval(0, 0)).toEqual([0, 1]);
  });
});

describe('mcnemarExact', () => {
  // exact two-sided binomial p-values, 2·Σ C(n,i)/2^n with Python's fractions.Fraction and math.comb
  it.each([
    [0, 0, 1],
    [1, 0, 1],
    [5, 1, 0.21875],
    [10, 3, 0.09228515625],
    [12, 12, 1],
    [40, 20, 0.01348929373119186],
    [150, 120, 0.0773893989802185],
    [2000, 1900, 0.11289365225934889],
  ])('b=%i c=%i -> p=%f', (b, c, p) => {
    expect(mcnemarExact(b, c)).toBeCloseTo(p, 10);
    expect(mcnemarExact(c, b)).toBeCloseTo(p, 10);
  });
  it('logGamma and the binomial cdf agree with exact values', () => {
    expect(logGamma(10)).toBeCloseTo(Math.log(362880), 10);
    expect(binomialHalfCdf(2, 4)).toBeCloseTo(11 / 16, 12);
  });
});

describe('pairedDifferenceInterval', () => {
  it('counts the paired table', () => {
    expect(pairedTable([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])).toEqual({ both: 2, onlyA: 1, onlyB: 1, neither: 1 });
  });
  it('contains the observed difference and is narrow for identical models', () => {
    const same = pairedDifferenceInterval({ both: 9000, onlyA: 0, onlyB: 0, neither: 1000 });
    expect(same[0]).toBeLessThan(0);
    expect(same[1]).toBeGreaterThan(0);
    expect(same[1] - same[0]).toBeLessThan(0.002);
    const t = { both: 800, onlyA: 60, onlyB: 20, neither: 120 };
    const [lo, hi] = pairedDifferenceInterval(t);
    expect(lo).toBeLessThan(0.04);
    expect(hi).toBeGreaterThan(0.04);
    expect(lo).toBeGreaterThan(0); // McNemar p for 60 vs 20 is far below 0.05
    expect(mcnemarExact(60, 20)).toBeLessThan(0.001);
  });
  it('needs more samples for smaller drops', () => {
    expect(minSamplesForDrop(0.01, 0.02)).toBeGreaterThan(minSamplesForDrop(0.02, 0.02));
    expect(minSamplesForDrop(0.01, 0.02)).toBe(Math.ceil((1.959963984540054 ** 2 * 0.02) / 0.0001));
  });
});

describe('bootstrap', () => {
  it('is reproducible for a seed and covers the mean of a known distribution', () => {
    const random = seededRandom(1);
    const values = Array.from({ length: 400 }, () => random());
    const a = meanInterval(values, { seed: 7 });
    expect(meanInterval(values, { seed: 7 })).toEqual(a);
    // mean of U(0,1) is 0.5 with sd 0.2887/sqrt(400) = 0.0144: a 95% interval is about ±0.028 wide
    expect(a[0]).toBeLessThan(0.5 + 0.04);
    expect(a[1]).toBeGreaterThan(0.5 - 0.04);
    expect(a[1] - a[0]).toBeGreaterThan(0.04);
    expect(a[1] - a[0]).toBeLessThan(0.075);
  });
  it('has close to nominal coverage for the median', () => {
    let covered = 0;
    for (let t = 0; t < 100; t++) {
      const random = seededRandom(100 + t);
      const values = Array.from({ length: 101 }, () => random());
      const [lo, hi] = quantileInterval(values, 0.5, { seed: t, resamples: 400 });
      if (lo <= 0.5 && 0.5 <= hi) covered++;
    }
    expect(covered).toBeGreaterThanOrEqual(88);
  });
  it('drops non-finite replicates', () => {
    expect(bootstrapInterval(5, () => NaN)).toEqual([NaN, NaN]);
  });
});
