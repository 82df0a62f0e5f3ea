import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { loadModel } from '../../src/onnx/model.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { tensorToFloat32 } from '../../src/onnx/tensor.js';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { firstSamples } from '../support/slice.js';
import { onnxCheckAll } from '../support/onnxChecker.js';
import { referenceAccuracy } from '../support/referenceEval.js';

const FAST = ['--warmup', '1', '--runs', '5', '--batch-sizes', '1'];

describe('prune-guard run --recovery reconstruct', () => {
  const out = tempDir();
  let ledger: Ledger;
  let code: number | null;
  beforeAll(async () => {
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--sparsity', '0.8', '--recovery', 'reconstruct', '--out', out, '--budget', 'accuracy-drop=100pt', '--quiet', ...FAST]);
    code = r.code;
    expect(r.stderr).not.toMatch(/error/i);
    ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
  }, 120_000);

  it('records the recovery as a step measured on its own saved file, and ships that file', () => {
    expect(validateLedger(ledger)).toEqual([]);
    const steps = ledger.models[0].steps;
    expect(steps.map((s) => s.name)).toEqual(['dense', 'prune', 'recover:reconstruct']);
    expect(steps[1].artifact).toBe(path.join(out, 'steps', '01-prune.onnx'));
    expect(steps[2].artifact).toBe(path.join(out, 'steps', '02-reconstruct.onnx'));
    const shipped = path.join(out, 'mlp.pruned.onnx');
    expect(ledger.models[0].pruned).toBe(shipped);
    expect(fs.readFileSync(shipped).equals(fs.readFileSync(steps[2].artifact))).toBe(true);
    expect(steps[2].recovery!.seconds).toBeGreaterThan(0);
    expect(steps[2].recovery!.calib_nll_after!).toBeLessThan(steps[2].recovery!.calib_nll_before!);
  });

  it('keeps the sparsity of the prune step and the accuracy numbers are those of the files', async () => {
    const [, prune, rec] = ledger.models[0].steps;
    expect(rec.sparsity).toBe(prune.sparsity);
    const a = await referenceAccuracy(rec.artifact, fixture('fmnist-test.npz'));
    expect(rec.accuracy).toBeCloseTo(a.accuracy, 12);
    expect(rec.accuracy!).toBeGreaterThan(prune.accuracy! + 0.02);
    expect(code).toBe(ledger.verdict === 'fail' ? 1 : 0);
    // the refit moved surviving weights, it did not only copy the pruned model
    const p = new GraphIndex(loadModel(prune.artifact).proto.graph!);
    const r = new GraphIndex(loadModel(rec.artifact).proto.graph!);
    expect(tensorToFloat32(r.initializers.get('net.1.weight')!)).not.toEqual(tensorToFloat32(p.initializers.get('net.1.weight')!));
  });

  it('every step artifact passes onnx.checker', () => {
    expect(() => onnxCheckAll(ledger.models[0].steps.slice(1).map((s) => s.artifact))).not.toThrow();
  });

  it('refuses reconstruction without a calibration set, before writing anything', async () => {
    const dir = path.join(tempDir(), 'out');
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--recovery', 'reconstruct', '--out', dir, ...FAST]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--recovery reconstruct: needs a calibration set.*--calib/);
    expect(fs.existsSync(dir)).toBe(false);
  });
});

describe('prune-guard run --recovery auto (the default)', () => {
  it('keeps each recovery stage only when it improves the calibration score, and records gain and cost', async () => {
    const out = tempDir();
    // 128 calibration samples: distillation's 30 epochs cost a quarter of the full set's, and BatchNorm
    // statistics re-estimated from so few samples lose to the reconstructed ones, so one stage is dropped
    const calib = firstSamples(fixture('fmnist-calib.npz'), 128);
    const r = await runCli(['run', '--model', fixture('cnn-bn.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', calib, '--sparsity', '0.7', '--recovery-rounds', '1', '--out', out, '--quiet', ...FAST]);
    expect(r.stderr).not.toMatch(/error/i);
    const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
    expect(validateLedger(ledger)).toEqual([]);
    const steps = ledger.models[0].steps;
    expect(steps.map((s) => s.name)).toEqual(['dense', 'prune', 'recover:reconstruct', 'recover:distill']);
    for (const s of steps.slice(2)) {
      expect(s.recovery!.calib_nll_after!).toBeLessThan(s.recovery!.calib_nll_before!);
      expect(s.recovery!.seconds).toBeGreaterThan(0);
    }
    expect(steps.at(-1)!.accuracy!).toBeGreaterThan(steps[1].accuracy! + 0.05);
    // a stage that was tried but not kept is said so on stderr, with both scores, never silently dropped
    expect(r.stderr).toMatch(/recovery: BatchNorm re-estimation not kept \(calib acc [\d.]+%, NLL ([\d.]+) vs calib acc [\d.]+%, NLL ([\d.]+) without it\)/);
    const [, withBn, without] = /NLL ([\d.]+) vs calib acc [\d.]+%, NLL ([\d.]+) without it/.exec(r.stderr)!.map(Number);
    expect(withBn).toBeGreaterThan(without);
    expect(r.stderr).not.toMatch(/distillation (not kept|skipped)/);
    expect(steps[3].description).toMatch(/KL to dense/);
  }, 180_000);

  it('without --calib runs as none: the pruned model is the shipped file and no steps folder is made', async () => {
    const out = tempDir();
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--sparsity', '0.5', '--out', out, '--quiet', ...FAST]);
    expect(r.code).toBe(0);
    const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
    expect(ledger.models[0].steps.map((s) => s.name)).toEqual(['dense', 'prune']);
    expect(ledger.models[0].steps[1].artifact).toBe(path.join(out, 'mlp.pruned.onnx'));
    expect(fs.existsSync(path.join(out, 'steps'))).toBe(false);
  }, 120_000);
});
