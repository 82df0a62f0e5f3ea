import { describe, expect, it } from 'vitest';
import { EarlyStop } from '../../src/recover/distill/earlyStop.js';

const run = (start: number, scores: number[], patience = 3, clearGain = 0.02) => {
  const s = new EarlyStop(start, patience, clearGain);
  return scores.map((x) => s.observe(x));
};

describe('when distillation stops', () => {
  it('on a plateau whose small new bests would restart a plain patience, it stops `patience` epochs after the last clear gain', () => {
    // a clear gain at epoch 1, then bests of well under 2% each
    const seen = run(0.02, [0.015, 0.01495, 0.0149, 0.01485, 0.0148]);
    expect(seen.map((s) => s.best)).toEqual([true, true, true, true, true]);
    expect(seen.map((s) => s.stop)).toEqual([false, false, false, true, true]);
  });

  it('keeps going while the gains are clear, counted from the last clear one rather than from each new best', () => {
    // 0.0148 is not 2% below 0.015, but 0.0146 is: the count restarts there
    const seen = run(0.02, [0.015, 0.0148, 0.0146, 0.016, 0.017, 0.0145]);
    expect(seen.map((s) => s.stop)).toEqual([false, false, false, false, false, true]);
    expect(seen.map((s) => s.best)).toEqual([true, true, true, false, false, true]);
  });

  it('with no gain at all, it stops after `patience` epochs and never reports a best', () => {
    const seen = run(0.01, [0.02, 0.011, 0.0101]);
    expect(seen.map((s) => s.best)).toEqual([false, false, false]);
    expect(seen[2].stop).toBe(true);
  });
});
