import { describe, expect, it } from 'vitest';
import { FidelityAccumulator, outputFidelity } from '../../src/measure/fidelity.js';

describe('outputFidelity', () => {
  it('matches hand-computed cosine, relative L2 and max absolute error', () => {
    // sample 1: (1,0) vs (0,1): cosine 0; sample 2: (3,4) vs (6,8): cosine 1
    // difference (−1, 1, 3, 4): ‖·‖² = 27; reference ‖·‖² = 1 + 25 = 26
    const f = outputFidelity('out', [1, 0, 3, 4], [0, 1, 6, 8], 2);
    expect(f.samples).toBe(2);
    expect(f.cosine).toBeCloseTo(0.5, 12);
    expect(f.rel_l2).toBeCloseTo(Math.sqrt(27 / 26), 12);
    expect(f.max_abs).toBe(4);
    expect(f.top1_agreement).toBeUndefined();
  });

  it('an identical output is cosine 1, error 0; two all-zero samples count as cosine 1', () => {
    const f = outputFidelity('out', [0, 0, 2, -1], [0, 0, 2, -1], 2);
    expect(f.cosine).toBeCloseTo(1, 15);
    expect(f.rel_l2).toBe(0);
    expect(f.max_abs).toBe(0);
  });

  it('class-like outputs: top-1 agreement per row of the last axis', () => {
    // rows (1,0) vs (0,1): argmax 0 vs 1; (3,4) vs (6,8): both 1
    const f = outputFidelity('scores', [1, 0, 3, 4], [0, 1, 6, 8], 2, { classes: 2 });
    expect(f.top1_agreement).toBe(0.5);
    expect(f.top5_agreement).toBeUndefined();
  });

  it('rows of several positions per sample are each compared (a detector\'s anchors)', () => {
    // one sample, two anchors of two classes: agree on the first, not the second
    const f = outputFidelity('scores', [0.9, 0.1, 0.2, 0.8], [0.7, 0.3, 0.6, 0.4], 1, { classes: 2 });
    expect(f.top1_agreement).toBe(0.5);
  });

  it('top-5 agreement: the reference top class among the candidate\'s five best', () => {
    const ref = [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6]; // top class 6 in both rows
    // row 1: class 6 is the smallest (rank 6); row 2: four values above it (rank 4)
    const cand = [9, 8, 7, 6, 5, 1, 0, 9, 8, 7, 6, 0, 1, 5];
    const f = outputFidelity('logits', ref, cand, 2, { classes: 7 });
    expect(f.top1_agreement).toBe(0);
    expect(f.top5_agreement).toBe(0.5);
  });

  it('a tie in the candidate ranks the lower index first, as argmax does', () => {
    const ref = [0, 0, 0, 0, 0, 0, 1]; // top class 6
    const cand = [1, 1, 1, 1, 1, 1, 1]; // all tied: class 6 ranks last
    expect(outputFidelity('logits', ref, cand, 1, { classes: 7 }).top5_agreement).toBe(0);
  });

  it('a NaN in the candidate is not hidden by the running maximum', () => {
    const f = outputFidelity('out', [1, 2, 3], [1, NaN, 3], 1);
    expect(f.max_abs).toBeNaN();
    expect(f.rel_l2).toBeNaN();
    expect(f.cosine).toBeNaN();
  });

  it('a zero reference with a nonzero candidate has an infinite relative error', () => {
    expect(outputFidelity('out', [0, 0], [0, 1], 1).rel_l2).toBe(Infinity);
  });
});

describe('FidelityAccumulator', () => {
  it('batch by batch gives the same numbers as the whole set at once', () => {
    const ref = Float32Array.from({ length: 60 }, (_, i) => Math.sin(i));
    const cand = Float32Array.from(ref, (v, i) => v + 0.1 * Math.cos(3 * i));
    const whole = outputFidelity('o', ref, cand, 6, { classes: 10 });
    const acc = new FidelityAccumulator('o', { classes: 10 });
    acc.add(ref.subarray(0, 20), cand.subarray(0, 20), 2);
    acc.add(ref.subarray(20), cand.subarray(20), 4);
    const parts = acc.result();
    expect(parts.samples).toBe(6);
    expect(parts.cosine).toBeCloseTo(whole.cosine, 12);
    expect(parts.rel_l2).toBeCloseTo(whole.rel_l2, 12);
    expect(parts.max_abs).toBe(whole.max_abs);
    expect(parts.top1_agreement).toBe(whole.top1_agreement);
    expect(parts.top5_agreement).toBe(whole.top5_agreement);
  });

  it('refuses outputs of different sizes', () => {
    expect(() => new FidelityAccumulator('o').add([1, 2], [1], 1)).toThrow(/reference has 2 values but candidate 1/);
  });
});
