import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
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

describe('GPU energy from nvidia-smi', () => {
  it('is mean board power x time per sample, from a reporting nvidia-smi', async () => {
    const { gpuEnergyPerSample } = await import('../../src/measure/runtimeCost.js');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nvsmi-'));
    const fake = path.join(dir, 'nvidia-smi');
    // prints a 50 W reading every 20 ms until killed, as `-lms` does
    fs.writeFileSync(fake, '#!/bin/sh\nwhile true; do echo "50.00"; sleep 0.02; done\n', { mode: 0o755 });
    const runMs = 40;
    const e = await gpuEnergyPerSample(() => new Promise((r) => setTimeout(r, runMs)), 5, 2, fake);
    // 50 W over >= 0.2 s, 10 samples: >= 1 J per sample, and not wildly more; a timer may fire up to
    // 1 ms early against the monotonic clock the energy is timed with
    expect(e.joules).toBeGreaterThanOrEqual((50 * 5 * (runMs - 1)) / 1000 / 10);
    expect(e.joules).toBeLessThan(5);
    expect(e.note).toMatch(/nvidia-smi .*50\.0 W/);
  });

  it('is null with the reason when nvidia-smi is missing', async () => {
    const { gpuEnergyPerSample } = await import('../../src/measure/runtimeCost.js');
    const e = await gpuEnergyPerSample(async () => {}, 2, 1, '/nonexistent/nvidia-smi');
    expect(e).toEqual({ joules: null, note: 'not available: /nonexistent/nvidia-smi (NVML power) did not report on this runner' });
  });
});
