import { describe, expect, it } from 'vitest';
import { allocateSparsity, monotoneCurve } from '../../src/prune/sensitivity/allocateSparsity.js';
import { isUserError } from '../../src/errors.js';

const curve = (k: number) => [0.25, 0.5, 0.75, 0.9].map((ratio) => ({ ratio, increase: k * ratio * ratio }));

describe('allocateSparsity', () => {
  it('meets the global target exactly and gives the steeper layer less sparsity', () => {
    const layers = [
      { size: 1000, points: curve(0.1) },
      { size: 3000, points: curve(5) },
      { size: 777, points: curve(1) },
    ];
    for (const target of [0.3, 0.5, 0.7, 0.8]) {
      const a = allocateSparsity(layers, target);
      const total = layers.reduce((n, l) => n + l.size, 0);
      expect(a.pruned.reduce((x, y) => x + y, 0)).toBe(Math.round(target * total));
      expect(a.pruned.every((k, i) => Number.isInteger(k) && k >= 0 && k <= 0.95 * layers[i].size)).toBe(true);
      // steepest curve (layer 1) pruned least, flattest (layer 0) most
      expect(a.ratios[1]).toBeLessThan(a.ratios[2]);
      expect(a.ratios[2]).toBeLessThanOrEqual(a.ratios[0]);
    }
  });

  it('equal curves and sizes get equal ratios; a flat layer absorbs the target first', () => {
    const same = allocateSparsity([{ size: 100, points: curve(1) }, { size: 100, points: curve(1) }], 0.5);
    expect(Math.abs(same.pruned[0] - same.pruned[1])).toBeLessThanOrEqual(25);
    const flat = allocateSparsity([{ size: 100, points: curve(0) }, { size: 100, points: curve(3) }], 0.4);
    expect(flat.pruned).toEqual([80, 0]);
  });

  it('ignores measurement noise that would make pruning more look helpful', () => {
    const pts = monotoneCurve([{ ratio: 0.25, increase: -0.01 }, { ratio: 0.5, increase: 0.2 }, { ratio: 0.75, increase: 0.1 }], 0.95);
    expect(pts.map((p) => p.f)).toEqual([0, 0, 0.2, 0.2, expect.any(Number)]);
    for (let i = 1; i < pts.length; i++) expect(pts[i].f).toBeGreaterThanOrEqual(pts[i - 1].f);
  });

  it('refuses a target beyond the per-layer cap with a UserError', () => {
    let err: unknown;
    try {
      allocateSparsity([{ size: 100, points: curve(1) }], 0.97);
    } catch (e) {
      err = e;
    }
    expect(isUserError(err)).toBe(true);
    expect(String((err as Error).message)).toMatch(/--sparsity 0.97.*--scope global/);
  });
});
