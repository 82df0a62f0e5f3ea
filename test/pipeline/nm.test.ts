import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { loadModel } from '../../src/onnx/model.js';
import { verifyNM } from '../../src/prune/nm.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { referenceAccuracy } from '../support/referenceEval.js';
import { runCli } from '../support/cli.js';
import { fixture, present, realWorld, tempDir } from '../support/fixtures.js';
import { onnxCheck } from '../support/onnxChecker.js';

const FAST = ['--warmup', '1', '--runs', '5', '--batch-sizes', '1'];
const NONE = { exclude: [], keepFirstLayer: false, keepLastLayer: false };

describe.each([
  { name: 'fixture CNN with BatchNorm', model: fixture('cnn-bn.onnx'), data: fixture('fmnist-test.npz'), method: '2:4', n: 2, m: 4 },
  { name: 'fixture depthwise-separable CNN', model: fixture('dsconv-concat.onnx'), data: fixture('fmnist-test.npz'), method: '1:4', n: 1, m: 4 },
  { name: 'model trained elsewhere', model: realWorld('model.onnx'), data: realWorld('test.npz'), method: '2:4', n: 2, m: 4 },
])('prune-guard run --method $method on the $name', ({ model, data, method, n, m }) => {
  const out = tempDir();
  const pruned = path.join(out, `${path.basename(model, '.onnx')}.pruned.onnx`);
  let result: Awaited<ReturnType<typeof runCli>>;
  let ledger: Ledger;

  beforeAll(async () => {
    result = await runCli(['run', '--model', present(model), '--data', present(data), '--method', method, '--out', out, '--budget', 'accuracy-drop=100pt', '--budget', 'class-accuracy-drop=100pt', '--budget', 'ece-increase=100pt', ...FAST]);
    ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
  }, 120_000);

  it('runs, writes a valid ledger whose target is the pattern sparsity 1 - N/M', () => {
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    expect(validateLedger(ledger)).toEqual([]);
    expect(ledger.models[0].method).toBe(method);
    expect(ledger.models[0].target_sparsity).toBe(1 - n / m);
    expect(ledger.models[0].steps[1].description).toContain(`${n}:${m} semi-structured`);
  });

  it('the saved file follows the pattern and its counted sparsity is 1 - N/M less the dense tails', () => {
    const weights = prunableWeights(loadModel(model).proto, NONE);
    expect(verifyNM(loadModel(pruned).proto, weights, n, m)).toEqual([]);
    const s = ledger.models[0].steps[1].sparsity;
    expect(s).toBeLessThanOrEqual(1 - n / m + 1e-12);
    expect(s).toBeGreaterThan((1 - n / m) * 0.85);
  });

  it('fan-ins that are not a multiple of M are named in the notes, in the ledger and on stderr', () => {
    const notes = ledger.models[0].notes ?? [];
    const firstConv = prunableWeights(loadModel(model).proto, NONE)[0];
    // every model here starts with a 1-channel 3x3 conv: fan-in 9
    expect(firstConv.dims.slice(1)).toEqual([1, 3, 3]);
    expect(notes.some((x) => x.includes(firstConv.initializer) && x.includes('fan-in 9'))).toBe(true);
    expect(result.stderr).toContain('stay dense');
    expect(result.stdout).toContain('**Notes**');
  });

  it('the pruned model passes onnx.checker', () => {
    expect(() => onnxCheck(pruned)).not.toThrow();
  });

  it('accuracy in the ledger equals an independent evaluation of the saved file', async () => {
    const after = await referenceAccuracy(pruned, data);
    expect(ledger.models[0].steps[1].accuracy).toBeCloseTo(after.accuracy, 12);
  });
});

describe('N:M user errors', () => {
  it('an N:M pattern with N >= M is refused with exit 2 and one line', async () => {
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--method', '4:2', '--out', tempDir(), ...FAST]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/N:M must have N smaller than M, like "2:4" \(got '4:2'\)/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
