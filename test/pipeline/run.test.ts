import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/model.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { countSparsity } from '../../src/prune/sparsity.js';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { fixture, present, realWorld, tempDir } from '../support/fixtures.js';
import { onnxCheck } from '../support/onnxChecker.js';
import { referenceAccuracy } from '../support/referenceEval.js';
import { runCli } from '../support/cli.js';

const FAST = ['--warmup', '1', '--runs', '5', '--batch-sizes', '1,8'];
const NONE = { exclude: [], keepFirstLayer: false, keepLastLayer: false };

function readLedger(dir: string): Ledger {
  return JSON.parse(fs.readFileSync(path.join(dir, 'ledger.json'), 'utf8')) as Ledger;
}

/**
 * Without recovery, and judged by the default budgets (accuracy-drop 1%, class-accuracy-drop 5%,
 * ece-increase 2%, target-reduction 75%: unstructured pruning always reaches its target) on 2000 test samples: the fixtures lose more accuracy than allowed, overall and in
 * their worst class, with intervals clear of the limits (fail); the model trained elsewhere keeps its
 * accuracy and its worst class's interval straddles the limit (warn). Accuracy is deterministic, so
 * these verdicts are too.
 */
describe.each([
  {
    name: 'fixture CNN with BatchNorm',
    model: fixture('cnn-bn.onnx'),
    data: fixture('fmnist-test.npz'),
    sparsity: 0.5,
    verdict: 'fail',
    budgets: [['accuracy-drop', 'fail'], ['class-accuracy-drop', 'fail'], ['ece-increase', 'warn'], ['target-reduction', 'pass']],
  },
  {
    name: 'fixture MLP',
    model: fixture('mlp.onnx'),
    data: fixture('fmnist-test.npz'),
    sparsity: 0.7,
    verdict: 'fail',
    budgets: [['accuracy-drop', 'fail'], ['class-accuracy-drop', 'fail'], ['ece-increase', 'warn'], ['target-reduction', 'pass']],
  },
  {
    name: 'model trained elsewhere',
    model: realWorld('model.onnx'),
    data: realWorld('test.npz'),
    sparsity: 0.8,
    verdict: 'warn',
    budgets: [['accuracy-drop', 'pass'], ['class-accuracy-drop', 'warn'], ['ece-increase', 'pass'], ['target-reduction', 'pass']],
  },
])('prune-guard run on the $name', ({ model, data, sparsity, verdict, budgets }) => {
  const out = tempDir();
  let result: Awaited<ReturnType<typeof runCli>>;
  let ledger: Ledger;
  const pruned = path.join(out, `${path.basename(model, '.onnx')}.pruned.onnx`);

  beforeAll(async () => {
    result = await runCli(['run', '--model', present(model), '--data', present(data), '--sparsity', String(sparsity), '--method', 'unstructured', '--recovery', 'none', '--out', out, ...FAST]);
    ledger = readLedger(out);
  }, 120_000);

  it(`judges the default budgets (${verdict}), exits ${verdict === 'fail' ? 1 : 0}, prints the markdown ledger and writes the pruned model, ledger.json and ledger.md`, () => {
    expect(result.stderr).not.toMatch(/error/i);
    expect(ledger.models[0].budgets.map((b) => [b.name, b.verdict])).toEqual(budgets);
    expect(ledger.verdict).toBe(verdict);
    expect(result.code).toBe(verdict === 'fail' ? 1 : 0);
    expect(result.stdout).toContain('| Budget |');
    expect(fs.readFileSync(path.join(out, 'ledger.md'), 'utf8')).toBe(result.stdout.trimEnd() + '\n');
    expect(fs.existsSync(pruned)).toBe(true);
  });

  it('ledger.json follows the published schema', () => {
    expect(validateLedger(ledger)).toEqual([]);
    expect(ledger.schema).toBe('prune-guard/ledger@1');
    expect(ledger.models[0].steps.map((s) => s.name)).toEqual(['dense', 'prune']);
  });

  it('the pruned model passes onnx.checker', () => {
    expect(() => onnxCheck(pruned)).not.toThrow();
  });

  it('sparsity counted in the saved file equals the target within 0.5% and matches the ledger', () => {
    const weights = prunableWeights(loadModel(model).proto, NONE);
    const counted = countSparsity(loadModel(pruned).proto, weights);
    expect(Math.abs(counted.overall - sparsity)).toBeLessThan(0.005);
    expect(ledger.models[0].steps[1].sparsity).toBeCloseTo(counted.overall, 12);
    expect(ledger.models[0].steps[1].nonzero_params).toBeLessThan(ledger.models[0].steps[0].nonzero_params);
  });

  it('accuracy and agreement in the ledger equal an independent re-evaluation of the saved files', async () => {
    const dense = await referenceAccuracy(model, data);
    const after = await referenceAccuracy(pruned, data);
    const [d, p] = ledger.models[0].steps;
    expect(d.accuracy).toBeCloseTo(dense.accuracy, 12);
    expect(p.accuracy).toBeCloseTo(after.accuracy, 12);
    const agree = dense.pred.filter((c, i) => c === after.pred[i]).length / dense.pred.length;
    expect(p.agreement).toBeCloseTo(agree, 12);
  });

  it('size and latency are measured on the files', () => {
    const [d, p] = ledger.models[0].steps;
    expect(d.size_bytes).toBe(fs.statSync(model).size);
    expect(p.size_bytes).toBe(fs.statSync(pruned).size);
    expect(p.gzip_bytes).toBeLessThan(d.gzip_bytes);
    for (const s of [d, p]) {
      expect(s.latency_by_batch.map((l) => l.batch)).toEqual([1, 8]);
      expect(s.latency!.p50_ms).toBeGreaterThan(0);
      expect(s.latency!.p95_ms).toBeGreaterThanOrEqual(s.latency!.p50_ms);
    }
  });

  it('records provenance in the pruned model and leaves the input model untouched', () => {
    const meta = Object.fromEntries(loadModel(pruned).proto.metadataProps.map((e) => [e.key, e.value]));
    expect(meta['prune-guard.method']).toBe('unstructured');
    expect(Number(meta['prune-guard.target_sparsity'])).toBe(sparsity);
    expect(loadModel(model).proto.metadataProps.some((e) => e.key.startsWith('prune-guard'))).toBe(false);
  });
});

describe('budgets decide the exit code', () => {
  it('a violated budget exits 1 and says which', async () => {
    const out = tempDir();
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--sparsity', '0.97', '--out', out, '--budget', 'accuracy-drop=0.001', ...FAST]);
    expect(r.code).toBe(1);
    const ledger = readLedger(out);
    expect(ledger.verdict).toBe('fail');
    expect(ledger.models[0].budgets.find((b) => b.name === 'accuracy-drop')?.verdict).toBe('fail');
    expect(r.stdout).toContain('FAIL');
  });

  it('a budget whose metric was not measured is reported, not silently passed', async () => {
    const out = tempDir();
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--sparsity', '0.3', '--out', out, '--budget', 'shift-accuracy-drop=0.05', ...FAST]);
    expect(r.code).toBe(0);
    const b = readLedger(out).models[0].budgets.find((x) => x.name === 'shift-accuracy-drop')!;
    expect(b.verdict).toBe('warn');
    expect(b.actual).toBeNull();
    expect(b.detail).toMatch(/not measured/);
  });

  it('a shift set is evaluated for dense and pruned and checked against its budget', async () => {
    const out = tempDir();
    const r = await runCli(['run', '--model', fixture('cnn-bn.onnx'), '--data', fixture('fmnist-test.npz'), '--shift', `rotated=${fixture('fmnist-shift-rotate.npz')}`, '--sparsity', '0.3', '--out', out, '--budget', 'shift-accuracy-drop=50pt', '--budget', 'class-accuracy-drop=100pt', '--budget', 'accuracy-drop=100pt', '--budget', 'ece-increase=100pt', ...FAST]);
    expect(r.code).toBe(0);
    const m = readLedger(out).models[0];
    const [d, p] = m.steps;
    expect(d.shift_accuracy!.rotated).toBeGreaterThan(0.3);
    expect(p.shift_accuracy!.rotated).toBeGreaterThan(0.3);
    expect(m.budgets.find((x) => x.name === 'shift-accuracy-drop')!.actual).toBeCloseTo(d.shift_accuracy!.rotated - p.shift_accuracy!.rotated, 12);
  });
});

describe('a structured run that prunes nothing (every group behind a grouped convolution)', () => {
  it('fails with exit 1, never passes, and says per group why nothing was removed', async () => {
    const out = tempDir();
    const r = await runCli(['run', '--model', fixture('structured/grouped.onnx'), '--data', fixture('fmnist-calib.npz'), '--method', 'structured', '--sparsity', '0.3', '--recovery', 'none', '--out', out, '--warmup', '1', '--runs', '2', '--batch-sizes', '1']);
    const ledger = readLedger(out);
    expect(validateLedger(ledger)).toEqual([]);
    expect(r.code).toBe(1);
    expect(ledger.verdict).toBe('fail');
    const budget = ledger.models[0].budgets.find((b) => b.name === 'target-reduction')!;
    expect(budget).toMatchObject({ verdict: 'fail', actual: 0 });
    const prune = ledger.models[0].steps[1];
    expect(prune.reduction).toMatchObject({ unit: 'channels', requested: 0.3, met: 0, achieved: { channels: 0, params: 0, macs: 0 } });
    expect(prune.reduction!.skipped.map((s) => s.reason.kind)).toContain('grouped-conv');
    // budget names in tables keep non-breaking hyphens
    expect(fs.readFileSync(path.join(out, 'ledger.md'), 'utf8').replace(/\u2011/g, '-')).toMatch(/target-reduction.*0\.0% of channels removed where 30\.0% was asked/);
  }, 60_000);
});
