import { describe, expect, it } from 'vitest';
import { accuracyChart, axisRange } from '../../src/ledger/renderCharts.js';
import { sampleModel, step } from './fixtures.js';

describe('charts', () => {
  it('span the data rather than starting at zero', () => {
    const [lo, hi] = axisRange([-2.1, 0, -0.05, -1]);
    expect(lo).toBeLessThan(-2.1);
    expect(lo).toBeGreaterThan(-3);
    expect(hi).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
  });

  it('draw accuracy as the change against dense at each step, the step table\'s numbers, against the limit, with a legend', () => {
    const model = sampleModel({
      steps: [step({ accuracy: 0.8955 }), step({ name: 'prune', accuracy: 0.8745 }), step({ name: 'recover:reconstruct', accuracy: 0.895 })],
    });
    const chart = accuracyChart(model)!;
    expect(chart).toContain('Lines: 🟦 this model, change at each step · 🟥 `accuracy-drop` limit (≤ 1 pt)');
    expect(chart).toContain('"plotColorPalette":"#0969da, #d1242f"');
    expect(chart).toContain('x-axis ["dense", "prune", "recover:reconstruct"]');
    // 89.55% → 87.45% → 89.50% in the step table: 0, −2.10, −0.05 points
    expect(chart).toContain('line [0, -2.1, -0.05]');
    expect(chart).toContain('line [-1, -1, -1]');
  });

  it('are left out where they would only repeat one number', () => {
    expect(accuracyChart(sampleModel())).toBeUndefined();
    expect(accuracyChart(sampleModel({ method: 'compare' }))).toBeUndefined();
  });
});
