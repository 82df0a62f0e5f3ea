import * as fs from 'node:fs';
import * as path from 'node:path';
import { median } from 'simple-statistics';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Ledger, Step } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { mannWhitneyP } from '../../src/measure/funnel.js';
import { loadModel } from '../../src/onnx/model.js';
import { FLOAT_TYPES, tensorToFloat32 } from '../../src/onnx/tensor.js';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';

const FAST = ['--warmup', '1', '--runs', '8', '--batch-sizes', '1'];

// the raw latency samples of each run (per model, per batch size), which the ledger does not keep
const timed = vi.hoisted(() => [] as number[][][][]);
vi.mock('../../src/measure/latency.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/measure/latency.js')>();
  return {
    ...real,
    measureInterleaved: async (...args: Parameters<typeof real.measureInterleaved>) => {
      const samples = await real.measureInterleaved(...args);
      timed.push(samples);
      return samples;
    },
  };
});

/** Independent bitmask size: ceil(n/8) + 4 bytes per nonzero, over every float32 initializer of the file. */
function bitmaskBytes(file: string): number {
  let total = 0;
  for (const t of loadModel(file).proto.graph!.initializer) {
    if (!FLOAT_TYPES.has(t.dataType)) continue;
    const v = tensorToFloat32(t);
    total += Math.ceil(v.length / 8) + v.filter((x) => x !== 0).length * 4;
  }
  return total;
}

describe.each([
  { method: 'unstructured', sparsity: '0.8' },
  { method: '2:4', sparsity: '0.5' },
])('speed funnel in a real run ($method on the fixture MLP)', ({ method, sparsity }) => {
  const out = tempDir();
  let ledger: Ledger;
  let stdout: string;
  let steps: Step[];
  let samples: number[][][];

  beforeAll(async () => {
    const calls = timed.length;
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--method', method, '--sparsity', sparsity, '--out', out, ...FAST]);
    stdout = r.stdout;
    ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
    steps = ledger.models[0].steps;
    // one interleaved latency pass over dense and pruned
    expect(timed.length).toBe(calls + 1);
    samples = timed[calls];
  }, 120_000);

  it('every step has a funnel against the dense step, valid by the schema', () => {
    expect(validateLedger(ledger)).toEqual([]);
    const [d, p] = steps;
    expect(d.funnel).toMatchObject({ batch: 1, params_ratio: 1, flops_ratio: 1, sparse_flops_ratio: 1, ideal_speedup: 1, speedup: 1, speed: 'unchanged' });
    expect(p.funnel!.params_ratio).toBeCloseTo(p.nonzero_params / d.nonzero_params, 12);
    // zeros stay in the tensors: the dense kernels run every MAC
    expect(p.funnel!.flops_ratio).toBe(1);
    // the MLP is all Gemm weights, so the MACs with a nonzero weight follow the sparsity
    expect(p.funnel!.sparse_flops_ratio).toBeCloseTo(1 - p.sparsity, 2);
    expect(p.funnel!.ideal_speedup).toBeCloseTo(1 / p.funnel!.sparse_flops_ratio, 12);
    expect(p.funnel!.speedup).toBeCloseTo(d.latency!.p50_ms / p.latency!.p50_ms, 12);
    expect(p.funnel!.efficiency).toBeCloseTo(p.funnel!.speedup! / p.funnel!.ideal_speedup, 12);
  });

  it('the p-value is the Mann-Whitney test of the interleaved samples behind the latency records, and a step running the same kernels claims no speed change', () => {
    const [d, p] = steps;
    const [denseSamples, prunedSamples] = [samples[0][0], samples[1][0]];
    expect([denseSamples.length, prunedSamples.length]).toEqual([8, 8]);
    expect(d.latency!.p50_ms).toBe(median(denseSamples));
    expect(p.latency!.p50_ms).toBe(median(prunedSamples));
    // the dense step against its own samples: identical, so no evidence of any change
    expect(d.funnel!.p_value).toBe(1);
    expect(p.funnel!.p_value).toBe(mannWhitneyP(denseSamples, prunedSamples));
    // 2:4 keeps every tensor's shape, so both files run the same dense kernels: whatever the samples
    // say, no speed claim is made
    expect([p.flops, p.params]).toEqual([d.flops, d.params]);
    expect(p.funnel!.speed).toBe('unchanged');
  });

  it('sparse_bytes is the bitmask encoding of the saved files, and shrinks with the zeros', () => {
    const [d, p] = steps;
    expect(d.sparse_bytes).toBe(bitmaskBytes(d.artifact));
    expect(p.sparse_bytes).toBe(bitmaskBytes(p.artifact));
    expect(p.sparse_bytes!).toBeLessThan(d.sparse_bytes! * (1 - Number(sparsity)) + d.sparse_bytes! * 0.05);
  });

  it('the ledger shows the funnel and the plain CPU note, and the headline agrees with the samples', () => {
    expect(stdout).toContain('**Where the speed went**');
    expect(stdout).toContain('onnxruntime on CPU does not exploit');
    // the model's one-line summary heads its fold
    const headline = stdout.split('\n').find((l) => l.startsWith('<details><summary>'))!;
    // unstructured zeros run the same dense kernels: no speedup may be claimed, whatever the samples say
    expect(steps[1].funnel!.speed).toBe('unchanged');
    expect(headline).toContain('speed unchanged within noise');
    expect(headline).not.toMatch(/x faster|x slower/);
  });
});
