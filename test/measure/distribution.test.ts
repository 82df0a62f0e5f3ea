import { describe, expect, it } from 'vitest';
import { chiSquareHomogeneity, chiSquareSurvival, kolmogorovSmirnov, populationStabilityIndex } from '../../src/measure/stats/distribution.js';
import { seededRandom } from '../../src/util/random.js';

describe('chi-square', () => {
  // closed forms evaluated in Python: even df Q = e^{-x/2} Σ_{k<df/2} (x/2)^k / k!, df = 1 Q = erfc(sqrt(x/2))
  it.each([
    [3.0, 2, 0.22313016014842982],
    [10.0, 4, 0.0404276819945128],
    [20.0, 10, 0.029252688076961075],
    [3.841458820694124, 1, 0.05],
  ])('Q(%f; df=%i) = %f', (x, df, q) => {
    expect(chiSquareSurvival(x, df)).toBeCloseTo(q, 9);
  });
  it('homogeneity: same histogram gives p = 1, a moved class gives a small p', () => {
    expect(chiSquareHomogeneity([50, 50, 0], [100, 100, 0])).toEqual({ statistic: 0, df: 1, p_value: 1 });
    // 2x2 table [[30,70],[50,50]]: Pearson chi-square = 8.333..., df 1 (textbook hand computation)
    const r = chiSquareHomogeneity([30, 70], [50, 50]);
    expect(r.statistic).toBeCloseTo(8.333333333, 8);
    expect(r.p_value).toBeCloseTo(0.003892417122778627, 8); // erfc(sqrt(8.3333/2)) in Python
  });
});

describe('Kolmogorov-Smirnov', () => {
  it('finds D = 1 for disjoint samples and D = 0 for equal ones', () => {
    expect(kolmogorovSmirnov([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]).statistic).toBe(1);
    expect(kolmogorovSmirnov([1, 2, 3], [1, 2, 3])).toEqual({ statistic: 0, p_value: 1 });
  });
  it('rejects a shifted distribution and accepts the same one', () => {
    const r = seededRandom(5);
    const a = Array.from({ length: 500 }, () => r());
    const b = Array.from({ length: 500 }, () => r());
    const c = Array.from({ length: 500 }, () => r() + 0.2);
    expect(kolmogorovSmirnov(a, b).p_value).toBeGreaterThan(0.05);
    expect(kolmogorovSmirnov(a, c).p_value).toBeLessThan(1e-6);
  });
});

describe('population stability index', () => {
  it('is ~0 for the same distribution and large for a shifted one', () => {
    const r = seededRandom(9);
    const a = Array.from({ length: 2000 }, () => r());
    const b = Array.from({ length: 2000 }, () => r());
    expect(populationStabilityIndex(a, b)).toBeLessThan(0.02);
    expect(populationStabilityIndex(a, b.map((x) => x * 0.5))).toBeGreaterThan(0.25);
  });
});
