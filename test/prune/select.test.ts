import { describe, expect, it } from 'vitest';
import { kthSmallest } from '../../src/prune/select.js';

function rng(seed: number) {
  return () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

describe('kthSmallest', () => {
  it('equals the sorted k-th value on random data of many sizes', () => {
    const r = rng(1);
    for (const n of [1, 2, 3, 15, 16, 17, 100, 1000, 10_007]) {
      const v = Float32Array.from({ length: n }, () => r() * 2 - 1);
      const sorted = Float32Array.from(v).sort();
      for (const k of [0, n >> 1, n - 1, Math.floor(n / 3)]) {
        expect(kthSmallest(Float32Array.from(v), k)).toBe(sorted[k]);
      }
    }
  });

  it('handles many ties (quantised weights) without quadratic blow-up', () => {
    const v = Float32Array.from({ length: 200_000 }, (_, i) => i % 3);
    expect(kthSmallest(Float32Array.from(v), 66_666)).toBe(0);
    expect(kthSmallest(Float32Array.from(v), 66_667)).toBe(1);
    expect(kthSmallest(new Float32Array(100_000), 50_000)).toBe(0);
  });

  it('rejects k outside the array', () => {
    expect(() => kthSmallest(new Float32Array(3), 3)).toThrow(RangeError);
  });
});
