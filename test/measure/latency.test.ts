import { describe, expect, it } from 'vitest';
import { loadDataset, sliceBatch } from '../../src/data/dataset.js';
import { measureInterleaved } from '../../src/measure/latency.js';
import { loadModel } from '../../src/onnx/model.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { fixture } from '../support/fixtures.js';

const model = fixture('mlp.onnx');
const data = loadDataset(fixture('fmnist-calib.npz'), modelInputs(loadModel(model).proto, model), { requireLabels: false });

describe('measureInterleaved', () => {
  it('keeps exactly `runs` timed samples per model and batch after warm-up (no adaptive stop)', async () => {
    const s = await measureInterleaved([model, model], sliceBatch(data, 0, 4), { batchSizes: [1, 4], warmup: 2, runs: 7, threads: 1, repeat: 2 });
    expect(s.map((m) => m.map((b) => b.length))).toEqual([[7, 7], [7, 7]]);
    expect(s.flat(2).every((x) => x > 0 && Number.isFinite(x))).toBe(true);
  });
  it('the adaptive stop samples at least `runs` and stops at the time cap', async () => {
    const s = await measureInterleaved([model, model], sliceBatch(data, 0, 1), { batchSizes: [1], warmup: 0, runs: 5, threads: 1, targetRelCi: 1e-9, maxSeconds: 0.3 });
    expect(s[0][0].length).toBeGreaterThan(5);
    expect(s[0][0].length).toBe(s[1][0].length);
  });
});
