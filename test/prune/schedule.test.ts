import { describe, expect, it } from 'vitest';
import { chooseStep, cubicSchedule, fellOffCliff, fractionOfRemaining } from '../../src/prune/schedule.js';

describe('cubicSchedule (Zhu & Gupta 2017)', () => {
  it('gives s_t = s_f + (s_i - s_f)(1 - t/N)^3 for t = 1..N', () => {
    // 0.9 * (1 - (3/4)^3), 0.9 * (1 - (1/2)^3), 0.9 * (1 - (1/4)^3), 0.9
    expect(cubicSchedule(0, 0.9, 4)).toEqual([0.9 * (1 - 27 / 64), 0.9 * (1 - 1 / 8), 0.9 * (1 - 1 / 64), 0.9].map((x, i) => (i === 3 ? 0.9 : expect.closeTo(x, 12))));
    expect(cubicSchedule(0.2, 0.8, 2)[0]).toBeCloseTo(0.8 - 0.6 / 8, 12);
  });

  it('rises strictly, takes its largest steps first and ends exactly at the target', () => {
    for (const [si, sf, n] of [[0, 0.5, 1], [0, 0.9, 4], [0.3, 0.95, 10], [0, 0.999, 50]] as const) {
      const s = cubicSchedule(si, sf, n);
      expect(s).toHaveLength(n);
      expect(s.at(-1)).toBe(sf);
      expect(s[0]).toBeGreaterThan(si);
      for (let i = 1; i < s.length; i++) {
        expect(s[i]).toBeGreaterThan(s[i - 1]);
        if (i > 1) expect(s[i] - s[i - 1]).toBeLessThan(s[i - 1] - s[i - 2]);
      }
    }
  });

  it('refuses a target at or below the start and a step count below 1', () => {
    expect(() => cubicSchedule(0.5, 0.5, 4)).toThrow(/initial < final/);
    expect(() => cubicSchedule(0, 1, 4)).toThrow(/final < 1/);
    expect(() => cubicSchedule(0, 0.5, 0)).toThrow(/steps/);
  });
});

describe('fractionOfRemaining', () => {
  it('removes from the smaller model what takes the cumulative ratio to the target', () => {
    // 100 dense channels, 80 left: reaching 50% removed means 30 more of the 80
    expect(fractionOfRemaining(80, 100, 0.5)).toBeCloseTo(30 / 80, 12);
    expect(fractionOfRemaining(100, 100, 0.25)).toBeCloseTo(0.25, 12);
    expect(fractionOfRemaining(40, 100, 0.5)).toBe(0);
  });
});

describe('fellOffCliff', () => {
  it('stops only after `patience` consecutive drops beyond the threshold', () => {
    expect(fellOffCliff([0.001, 0.03], 0.02, 1)).toBe(true);
    expect(fellOffCliff([0.001, 0.03], 0.02, 2)).toBe(false);
    expect(fellOffCliff([0.03, 0.001, 0.03], 0.02, 2)).toBe(false);
    expect(fellOffCliff([0.001, 0.03, 0.05], 0.02, 2)).toBe(true);
    expect(fellOffCliff([0.02], 0.02, 1)).toBe(false);
  });
});

describe('chooseStep', () => {
  it('ships the sparsest step where no budget fails, ties to the higher accuracy', () => {
    const c = chooseStep([
      { index: 1, sparsity: 0.5, accuracy: 0.9, verdicts: ['pass', 'pass'] },
      { index: 2, sparsity: 0.7, accuracy: 0.88, verdicts: ['pass', 'warn'] },
      { index: 3, sparsity: 0.8, accuracy: 0.8, verdicts: ['fail', 'pass'] },
    ]);
    expect(c).toMatchObject({ index: 2, meetsBudgets: true });
    expect(chooseStep([
      { index: 1, sparsity: 0.7, accuracy: 0.85, verdicts: ['pass'] },
      { index: 2, sparsity: 0.7, accuracy: 0.87, verdicts: ['pass'] },
    ]).index).toBe(2);
  });

  it('without a passing step ships the least bad: fewest failed budgets, then highest accuracy', () => {
    const c = chooseStep([
      { index: 1, sparsity: 0.5, accuracy: 0.7, verdicts: ['fail', 'fail'] },
      { index: 2, sparsity: 0.6, accuracy: 0.6, verdicts: ['fail', 'pass'] },
      { index: 3, sparsity: 0.7, accuracy: 0.65, verdicts: ['pass', 'fail'] },
    ]);
    expect(c).toMatchObject({ index: 3, meetsBudgets: false });
    expect(c.reason).toMatch(/verdict fails/);
  });
});
