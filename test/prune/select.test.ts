import { describe, expect, it } from 'vitest';
import { kthSmallest, kthSmallestAbsBits } from '../../src/prune/select.js';

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

const bitsOf = (x: number): number => new Uint32Array(Float32Array.of(x).buffer)[0];

describe('kthSmallestAbsBits', () => {
  it('equals the sorted k-th |x| over several arrays together', () => {
    const r = rng(7);
    for (const sizes of [[1], [3, 0, 5], [1000, 17], [10_007, 3, 4096]]) {
      const arrays = sizes.map((n) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * 10 ** Math.floor(r() * 6 - 3)));
      const sorted = Float32Array.from(arrays.flatMap((a) => Array.from(a, Math.abs))).sort();
      for (const k of [0, sorted.length >> 1, sorted.length - 1, Math.floor(sorted.length / 3)]) {
        expect(kthSmallestAbsBits(arrays, k)).toBe(bitsOf(sorted[k]));
      }
    }
  });

  it('treats -0 as 0, ranks Infinity then NaN last, and counts ties', () => {
    const a = Float32Array.from([-0, 0, 2, -2, Infinity, NaN, 1]);
    expect(kthSmallestAbsBits([a], 1)).toBe(0);
    expect(kthSmallestAbsBits([a], 2)).toBe(bitsOf(1));
    expect(kthSmallestAbsBits([a], 4)).toBe(bitsOf(2));
    expect(kthSmallestAbsBits([a], 5)).toBe(bitsOf(Infinity));
    expect(kthSmallestAbsBits([a], 6)).toBeGreaterThan(bitsOf(Infinity));
    expect(() => kthSmallestAbsBits([a], 7)).toThrow(RangeError);
  });

  it('reads subarray views at their offset', () => {
    const base = Float32Array.from([100, 100, 3, -1, 2, 100]);
    expect(kthSmallestAbsBits([base.subarray(2, 5)], 0)).toBe(bitsOf(1));
    expect(kthSmallestAbsBits([base.subarray(2, 5)], 2)).toBe(bitsOf(3));
  });
});
