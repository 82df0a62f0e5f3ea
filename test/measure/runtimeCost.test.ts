import { describe, expect, it } from 'vitest';
import { loadDataset, sliceBatch } from '../../src/data/dataset.js';
import { measureRuntimeCost } from '../../src/measure/runtimeCost.js';
import { loadModel } from '../../src/onnx/model.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { fixture } from '../support/fixtures.js';

describe('runtime cost of a model', () => {
  it('reports the peak resident memory of loading and running it, bigger for a bigger batch', async () => {
    const model = fixture('resnet.onnx');
    const data = loadDataset(fixture('fmnist-test.npz'), modelInputs(loadModel(model).proto, model), { requireLabels: true });
    const source = sliceBatch(data, 0, 256);
    const stat = (batch: number) => ({ batch, p50_ms: 1, p95_ms: 1, runs: 1 });
    const small = await measureRuntimeCost(model, [stat(1)], source, { threads: 1 });
    const big = await measureRuntimeCost(model, [stat(1), stat(256)], source, { threads: 1 });
    if (process.platform !== 'linux') {
      expect(small.peak_rss_bytes).toBeNull();
      return;
    }
    expect(small.peak_rss_bytes).toBeGreaterThan(small.session_rss_bytes!);
    expect(small.peak_rss_bytes).toBeGreaterThan(10 * 2 ** 20);
    expect(small.memory_note).toMatch(/VmHWM/);
    // batch 256 of a ResNet holds activations of tens of MB that batch 1 does not
    expect(big.session_rss_bytes!).toBeGreaterThan(small.session_rss_bytes! + 8 * 2 ** 20);
  });
});
