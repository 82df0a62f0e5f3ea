import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../src/data/dataset.js';
import { UserError } from '../../src/errors.js';
import { corruptDataset, corruptionSets, parseCorruption } from '../../src/measure/corruptions.js';

function images(): Dataset {
  const data = new Float32Array(2 * 1 * 8 * 8);
  for (let i = 0; i < data.length; i++) data[i] = (i % 8) / 8; // horizontal ramp
  data[3 * 8 + 3] = 5; // one bright pixel in sample 0
  return { path: 'x.npz', count: 2, inputs: new Map([['input', { dtype: 'float32', dims: [2, 1, 8, 8], data }]]), labels: Int32Array.from([0, 1]) };
}

function tabular(): Dataset {
  const data = Float32Array.from({ length: 200 * 4 }, (_, i) => (i % 4) + Math.floor(i / 4) / 200);
  return { path: 't.npz', count: 200, inputs: new Map([['x', { dtype: 'float32', dims: [200, 4], data }]]), labels: new Int32Array(200) };
}

const x = (d: Dataset) => d.inputs.values().next().value!.data as Float32Array;

describe('corruptions', () => {
  it('parses KIND:SEVERITY and refuses anything else with the list of kinds', () => {
    expect(parseCorruption('blur:3', '--corruption')).toEqual({ kind: 'blur', severity: 3 });
    expect(() => parseCorruption('blur:6', '--corruption')).toThrow(UserError);
    expect(() => parseCorruption('fog:1', '--corruption')).toThrow(/gaussian-noise, contrast, brightness, blur, feature-noise, feature-dropout/);
  });
  it('is deterministic and never touches the source', () => {
    const d = images();
    const before = x(d).slice();
    const a = corruptDataset(d, { kind: 'gaussian-noise', severity: 2 });
    expect(x(corruptDataset(d, { kind: 'gaussian-noise', severity: 2 }))).toEqual(x(a));
    expect(x(d)).toEqual(before);
    expect(x(a)).not.toEqual(before);
    expect(a.labels).toBe(d.labels);
  });
  it('blur spreads a bright pixel and keeps the total of a plane roughly', () => {
    const b = x(corruptDataset(images(), { kind: 'blur', severity: 3 }));
    expect(b[3 * 8 + 3]).toBeLessThan(5);
    expect(b[3 * 8 + 4]).toBeGreaterThan((4 / 8) + 0.1);
  });
  it('contrast pulls every pixel toward its plane mean; brightness shifts all', () => {
    const d = images();
    const c = x(corruptDataset(d, { kind: 'contrast', severity: 5 }));
    const src = x(d);
    const mean = src.subarray(64, 128).reduce((a, v) => a + v, 0) / 64;
    expect(c[64]).toBeCloseTo(mean + 0.15 * (src[64] - mean), 5);
    const br = x(corruptDataset(d, { kind: 'brightness', severity: 1 }));
    expect(br[0] - src[0]).toBeCloseTo(0.1 * 5, 5);
  });
  it('image corruptions refuse tabular inputs; feature corruptions work on them', () => {
    expect(() => corruptDataset(tabular(), { kind: 'blur', severity: 1 })).toThrow(/for images \[N, C, H, W\].*use feature-noise/);
    const t = tabular();
    const dropped = x(corruptDataset(t, { kind: 'feature-dropout', severity: 5 }));
    const changed = dropped.filter((v, i) => v !== x(t)[i]).length;
    expect(changed / dropped.length).toBeGreaterThan(0.4);
    expect(changed / dropped.length).toBeLessThan(0.6);
    expect(corruptionSets(t, ['feature-noise:1']).map((s) => s.name)).toEqual(['feature-noise:1']);
  });
});
