/**
 * Recovery keeps a stage only when it helps, with or without labels: a calibration set without labels
 * judges each stage by how closely the model follows the dense one (KL and agreement through the
 * classifier head; the relative error of every compared output in the fidelity task).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readNpz } from '../../src/data/npz.js';
import { loadDataset } from '../../src/data/dataset.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { defaultHead } from '../../src/onnx/runtime/classifier.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import type { Ledger } from '../../src/ledger/types.js';
import { loadModel } from '../../src/onnx/model.js';
import { magnitudePrune } from '../../src/prune/magnitude.js';
import { improves, scoreRecord, stageJudge } from '../../src/recover/stageJudge.js';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { firstSamples } from '../support/slice.js';

const UNLABELLED = firstSamples(fixture('exports/fmnist-unlabelled.npz'), 96);
const TEST = firstSamples(fixture('fmnist-test.npz'), 128);
const FAST = ['--batch-sizes', '1', '--runs', '3', '--warmup', '1'];

describe('the judge of a recovery stage', () => {
  it('orders scores by loss, breaks ties by accuracy or agreement, and refuses to compare unlike scores', () => {
    expect(improves({ against: 'labels', accuracy: 0.5, nll: 1 }, { against: 'labels', accuracy: 0.9, nll: 1.1 })).toBe(true);
    expect(improves({ against: 'labels', accuracy: 0.9, nll: 1 }, { against: 'labels', accuracy: 0.8, nll: 1 })).toBe(true);
    expect(improves({ against: 'dense', agreement: 0.9, kl: 0.2 }, { against: 'dense', agreement: 0.9, kl: 0.1 })).toBe(false);
    expect(improves({ against: 'outputs', error: 0.01 }, { against: 'outputs', error: 0.02 })).toBe(true);
    expect(improves({ against: 'outputs', error: 0.02 }, { against: 'outputs', error: 0.02 })).toBe(false);
    expect(() => improves({ against: 'outputs', error: 0 }, { against: 'dense', agreement: 1, kl: 0 })).toThrow(/do not compare/);
    expect(scoreRecord({ against: 'dense', agreement: 0.8, kl: 0.3 }, { against: 'dense', agreement: 0.9, kl: 0.1 })).toEqual({
      calib_agreement_before: 0.8,
      calib_agreement_after: 0.9,
      calib_kl_before: 0.3,
      calib_kl_after: 0.1,
    });
  });

  it('without labels scores the dense model as perfect and a pruned one as worse, for a head and for outputs', async () => {
    const dense = loadModel(fixture('cnn-bn.onnx')).proto;
    const calib = loadDataset(UNLABELLED, modelInputs(dense, 'model'), { requireLabels: false });
    expect(calib.labels).toBeNull();
    const weights = prunableWeights(dense, { exclude: [], keepFirstLayer: false, keepLastLayer: false });
    const pruned = magnitudePrune(dense, weights, 0.8, 'global').model;
    const head = await stageJudge(dense, calib, { head: defaultHead(dense) }, 1);
    const d = await head.score(dense);
    const p = await head.score(pruned);
    expect(d).toEqual({ against: 'dense', kl: 0, agreement: 1 });
    expect(p.against === 'dense' && p.kl > 0.01 && p.agreement < 1).toBe(true);
    expect(improves(d, p)).toBe(true);

    const outputs = await stageJudge(dense, calib, { outputs: ['logits'] }, 1);
    expect(await outputs.score(dense)).toEqual({ against: 'outputs', error: 0 });
    const e = await outputs.score(pruned);
    expect(e.against === 'outputs' && e.error > 1e-3).toBe(true);
  });
});

describe('recovery auto with a calibration set without labels', () => {
  it('judges reconstruction, BatchNorm statistics and distillation of a classifier against the dense model, keeping only what lowers the KL', async () => {
    const out = path.join(tempDir(), 'out');
    const r = await runCli(['run', '--model', fixture('cnn-bn.onnx'), '--data', TEST, '--calib', UNLABELLED, '--out', out, '--sparsity', '0.8', '--recovery', 'auto', '--recovery-work', '40', ...FAST]);
    expect([0, 1]).toContain(r.code);
    const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
    const m = ledger.models[0];
    expect(m.task).toBeUndefined();
    const recovered = m.steps.filter((s) => s.recovery);
    expect(recovered.length).toBeGreaterThan(0);
    for (const s of recovered) {
      expect(s.recovery!.calib_accuracy_after).toBeUndefined();
      expect(s.recovery!.calib_kl_after!).toBeLessThan(s.recovery!.calib_kl_before!);
    }
    // every stage that ran was judged: kept (above) or said not kept, never waved through for want of labels
    const said = r.stderr.split('\n').filter((l) => /recovery: .* not kept/.test(l));
    for (const l of said) expect(l).toMatch(/calib agreement with dense [\d.]+%, KL [\d.]+ vs calib agreement|no epoch improved the held-out KL/);
    expect(recovered.length + said.length).toBeGreaterThanOrEqual(2);
    expect(r.stderr).not.toMatch(/no labels to judge/);
  }, 120_000);

  it('in the fidelity task judges each stage by the relative error of the outputs to the dense ones', async () => {
    const out = path.join(tempDir(), 'out');
    const data = firstSamples(fixture('exports/fmnist-unlabelled.npz'), 64);
    const r = await runCli(['run', '--model', fixture('exports/detector.onnx'), '--data', data, '--calib', UNLABELLED, '--out', out, '--sparsity', '0.8', '--recovery', 'auto', '--recovery-work', '40', ...FAST]);
    expect([0, 1]).toContain(r.code);
    const m = (JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger).models[0];
    expect(m.task).toBe('fidelity');
    const recovered = m.steps.filter((s) => s.recovery);
    expect(recovered.length).toBeGreaterThan(0);
    for (const s of recovered) expect(s.recovery!.calib_output_error_after!).toBeLessThan(s.recovery!.calib_output_error_before!);
    expect(readNpz(UNLABELLED).has('y')).toBe(false);
  }, 120_000);
});
