/**
 * Models as exporters write them, each run end to end through the CLI: the ledger's numbers for every
 * step are reproduced by the independent evaluator (test/support/referenceEval.ts) on the step's own
 * saved file, and what was written keeps the model's own format. (Every export pruned by every method,
 * and onnx.checker on what is written: exportVariants.test.ts.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/model.js';
import { DataType } from '../../src/onnx/tensor.js';
import { cliInProcess, expectReproduced, exported, FAST, head, initializerTypes, runExport as run, twoOutputs } from '../support/exportRuns.js';
import { fixture, tempDir } from '../support/fixtures.js';

const TEST = fixture('fmnist-test.npz');
const CALIB = head(fixture('fmnist-calib.npz'), 64);

describe('a model whose input batch is fixed at 1', () => {
  it('is evaluated, calibrated, recovered and timed at batch 1, and says so', async () => {
    // 300 test samples: every one is a run of its own here, in the pipeline and in the reference alike
    const test = head(TEST, 300);
    const r = await run('cnn-batch1.onnx', test, '--calib', CALIB, '--batch-sizes', '1,32');
    expect([0, 1]).toContain(r.code);
    const m = r.model!;
    expect(m.eval).toMatchObject({ batch: 1, fixed_batch: 1, task: 'multiclass', scores: 'logits' });
    expect(m.notes!.join('\n')).toMatch(/input batch fixed at 1: latency measured at batch 1 instead of 32/);
    for (const s of m.steps) expect(s.latency_by_batch.map((l) => l.batch)).toEqual([1]);
    expect(m.steps.map((s) => s.name)).toContain('recover:reconstruct');
    for (const s of m.steps) await expectReproduced(s, test, 'logits');
  });
});

describe('float16 weights and I/O', () => {
  it('read float16 outputs as numbers, feed float32 data as float16, keep float16 weights, and say why distillation is skipped', async () => {
    const r = await run('cnn-fp16.onnx', TEST, '--calib', CALIB);
    expect([0, 1]).toContain(r.code);
    const m = r.model!;
    expect(m.steps[0].accuracy).toBeCloseTo(0.831, 2);
    for (const s of m.steps) await expectReproduced(s, TEST, 'logits');
    expect(initializerTypes(m.pruned)).toEqual(new Set([DataType.FLOAT16]));
    expect(m.notes!.join('\n')).toMatch(/distillation skipped: the model computes in float16/);
  });
});

describe('bfloat16 weights behind a Cast', () => {
  it('are pruned and refit, and written back as bfloat16 behind the Cast', async () => {
    const r = await run('cnn-bf16w.onnx', TEST, '--calib', CALIB);
    expect([0, 1]).toContain(r.code);
    const m = r.model!;
    expect(m.notes!.join('\n')).toMatch(/8 weights stored as bfloat16 behind a Cast/);
    const pruned = m.steps.find((s) => s.name === 'prune')!;
    expect(pruned.sparsity).toBeCloseTo(0.5, 2);
    for (const s of m.steps) await expectReproduced(s, TEST, 'logits');
    expect(initializerTypes(m.pruned)).toEqual(new Set([DataType.BFLOAT16]));
    expect(loadModel(m.pruned).proto.graph!.node.filter((n) => n.opType === 'Cast')).toHaveLength(8);
  });
});

describe('probability and log-probability outputs', () => {
  it('are scored as they are, not softmaxed again, behind Flatten, Squeeze or as [N,C,1,1]', async () => {
    for (const file of ['sqz-softmax-flatten.onnx', 'sqz-softmax-squeeze.onnx', 'sqz-softmax4d.onnx']) {
      const r = await run(file, TEST, '--recovery', 'none');
      expect([0, 1], file).toContain(r.code);
      const m = r.model!;
      expect(m.eval, file).toMatchObject({ output: 'probs', scores: 'probabilities' });
      // the truth (make_export_fixtures.py): 0.5582; softmax of probabilities would give about 1.8
      expect(m.steps[0].nll!, file).toBeCloseTo(0.5582, 3);
      for (const s of m.steps) await expectReproduced(s, TEST, 'probs');
    }
  });

  it('get the temperature baked before the Softmax (or LogSoftmax), so the output stays probabilities', async () => {
    for (const [file, kind] of [['sqz-softmax4d.onnx', 'probs'], ['cnn-logsoftmax.onnx', 'logprobs']] as const) {
      const r = await run(file, TEST, '--calib', CALIB, '--recovery', 'none', '--bake-temperature');
      expect([0, 1], file).toContain(r.code);
      const m = r.model!;
      const baked = m.steps.at(-1)!;
      expect(baked.name).toBe('calibrate:temperature');
      const g = loadModel(baked.artifact).proto.graph!;
      const div = g.node.find((n) => n.opType === 'Div' && n.input[1].startsWith('prune_guard_temperature'))!;
      expect(g.node.find((n) => n.input[0] === div.output[0])!.opType, file).toBe(file.includes('log') ? 'LogSoftmax' : 'Softmax');
      for (const s of m.steps) await expectReproduced(s, TEST, kind);
    }
  });
});

describe('sigmoid heads', () => {
  it('a binary sigmoid [N,1] or [N] on int64 tokens: labels 0/1, threshold 0.5, F1, recovery through the sigmoid', async () => {
    const data = exported('tokens-test.npz');
    for (const file of ['tokens-sigmoid.onnx', 'tokens-sigmoid-flat.onnx']) {
      const r = await run(file, data, '--calib', exported('tokens-calib.npz'), '--budget', 'label-f1-drop=0.05');
      expect([0, 1], file).toContain(r.code);
      const m = r.model!;
      expect(m.eval, file).toMatchObject({ task: 'binary', classes: 2, output: 'prob' });
      expect(m.steps[0].accuracy).toBeCloseTo(0.952, 3);
      expect(m.steps[0].f1).toBeGreaterThan(0.9);
      expect(m.budgets.find((b) => b.name === 'label-f1-drop')!.actual).not.toBeNull();
      for (const s of m.steps) await expectReproduced(s, data, 'sigmoid');
    }
  });

  it('a multi-label sigmoid [N,K] with y [N,K]: per-label accuracy and F1, budgets on them', async () => {
    const data = exported('fmnist-multilabel-test.npz');
    const r = await run('fmnist-multilabel.onnx', data, '--calib', head(exported('fmnist-multilabel-calib.npz'), 96), '--budget', 'label-f1-drop=0.02');
    expect([0, 1]).toContain(r.code);
    const m = r.model!;
    expect(m.eval).toMatchObject({ task: 'multilabel', classes: 5 });
    for (const s of m.steps) {
      const ref = await expectReproduced(s, data, 'sigmoid');
      s.per_class!.forEach((a, k) => expect(Math.abs(a! - ref.perLabel![k])).toBeLessThanOrEqual(1.01 / 500));
      expect(s.per_label_f1).toHaveLength(5);
    }
    expect(m.budgets.map((b) => b.name)).toEqual(expect.arrayContaining(['class-accuracy-drop', 'label-f1-drop']));
    expect(m.class_changes).toHaveLength(5);
  });
});

describe('several outputs', () => {
  it('--output (or output: in the config) picks the one to judge; without it --task classification is refused before any work', async () => {
    const dir = tempDir();
    const two = twoOutputs(dir);
    const refused = await cliInProcess(['run', '--model', two, '--data', TEST, ...FAST, '--task', 'classification', '--out', path.join(dir, 'refused')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/has 2 outputs .*--output NAME.*--task fidelity/);
    expect(fs.existsSync(path.join(dir, 'refused'))).toBe(false);
    const byFlag = await cliInProcess(['run', '--model', two, '--data', TEST, ...FAST, '--recovery', 'none', '--output', 'logits']);
    expect([0, 1]).toContain(byFlag.code);
    expect(byFlag.model!.eval.output).toBe('logits');
    await expectReproduced(byFlag.model!.steps[0], TEST, 'logits', { outputName: 'logits' });
    const config = path.join(dir, 'guard.yml');
    fs.writeFileSync(config, 'output: logits\nrecovery: none\n');
    const byConfig = await cliInProcess(['run', '--model', two, '--data', TEST, ...FAST, '--config', config]);
    expect([0, 1]).toContain(byConfig.code);
    expect(byConfig.model!.steps[0].accuracy).toBe(byFlag.model!.steps[0].accuracy);
  });

  it('a detector and an embedding model judged as classifiers get one line naming --output and --task fidelity, exit 2, nothing written', async () => {
    const data = exported('fmnist-unlabelled.npz');
    for (const file of ['detector.onnx', 'embed.onnx']) {
      const out = path.join(tempDir(), 'out');
      const r = await run(file, data, '--task', 'classification', '--out', out);
      expect(r.code, file).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, file).toHaveLength(1);
      expect(lines[0], file).toMatch(/judge every output by its fidelity to the dense model with --task fidelity/);
      if (file === 'detector.onnx') expect(lines[0]).toContain('--output NAME');
      expect(fs.existsSync(out), file).toBe(false);
    }
  });
});
