import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/schema.js';
import { loadDataset, takeSamples, type Dataset } from '../../src/data/dataset.js';
import { UserError } from '../../src/errors.js';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { loadModel } from '../../src/onnx/model.js';
import type { ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { tensorToFloat32 } from '../../src/onnx/tensor.js';
import { silentProgress } from '../../src/io/progress.js';
import { magnitudePrune } from '../../src/prune/magnitude.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { calibScore } from '../../src/recover/calibScore.js';
import { DEFAULT_DISTILL, distill, type DistillResult } from '../../src/recover/distill/distill.js';
import { distillStage, skipReason } from '../../src/recover/distill/stage.js';
import { seededWeights, oneOpModel } from '../support/buildModel.js';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { onnxCheck } from '../support/onnxChecker.js';

const ALL = { exclude: [], keepFirstLayer: false, keepLastLayer: false };
const FAST = ['--warmup', '1', '--runs', '5', '--batch-sizes', '1'];

describe('distill on cnn-bn pruned to 80%', () => {
  let dense: ModelProto;
  let pruned: ModelProto;
  let calib: Dataset;
  let weights: string[];
  let r: DistillResult;
  beforeAll(async () => {
    dense = loadModel(fixture('cnn-bn.onnx')).proto;
    // a fixed subset and three epochs keep this file fast
    calib = takeSamples(loadDataset(fixture('fmnist-calib.npz'), modelInputs(dense, 'cnn-bn'), { requireLabels: true }), Array.from({ length: 200 }, (_, i) => i));
    const ws = prunableWeights(dense, ALL);
    weights = ws.map((w) => w.initializer);
    pruned = magnitudePrune(dense, ws, 0.8, 'global').model;
    r = await distill(dense, pruned, calib, new Set(weights), { ...DEFAULT_DISTILL, maxEpochs: 3 });
  }, 120_000);

  it('lowers the held-out KL to the dense model and the calibration NLL', async () => {
    expect(r.heldoutCount).toBe(40);
    expect(r.trainCount).toBe(160);
    expect(r.improved).toBe(true);
    expect(r.after.kl).toBeLessThan(r.before.kl * 0.5);
    const before = await calibScore(pruned, calib);
    const after = await calibScore(r.model, calib);
    expect(after.nll).toBeLessThan(before.nll);
    expect(after.accuracy).toBeGreaterThan(before.accuracy);
  });

  it('keeps every pruned weight exactly zero and moves the surviving ones', () => {
    const p = new GraphIndex(pruned.graph!);
    const d = new GraphIndex(r.model.graph!);
    let moved = 0;
    for (const w of weights) {
      const before = tensorToFloat32(p.initializers.get(w)!);
      const after = tensorToFloat32(d.initializers.get(w)!);
      const revived: number[] = [];
      for (let i = 0; i < before.length; i++) {
        if (before[i] === 0 && after[i] !== 0) revived.push(i);
        else if (after[i] !== before[i]) moved++;
      }
      expect(revived, w).toEqual([]);
    }
    expect(moved).toBeGreaterThan(1000);
    // BatchNorm statistics are not parameters: they stay as they were
    expect(tensorToFloat32(d.initializers.get('features.0.1.running_mean')!)).toEqual(tensorToFloat32(p.initializers.get('features.0.1.running_mean')!));
  });
});

describe('an op without a gradient rule', () => {
  // MatMul then Softplus: Softplus has no rule
  const model = oneOpModel({ opType: 'Gemm', x: ['N', 4], weight: { dims: [4, 3], values: seededWeights(12) }, y: ['N', 3] });
  const g = model.graph!;
  g.node.push({ ...g.node[0], name: 'sp', opType: 'Softplus', input: ['y'], output: ['z'], attribute: [] });
  g.output[0] = { ...g.output[0], name: 'z' };
  const calib: Dataset = { path: 'calib', count: 60, inputs: new Map([['x', { dtype: 'float32', dims: [60, 4], data: seededWeights(240) }]]), labels: null };

  it('is a UserError naming it for --recovery distill', async () => {
    const run = distillStage(model, model, calib, ['W'], DEFAULT_CONFIG, silentProgress, { optional: false, maxEpochs: 30 });
    await expect(run).rejects.toThrow(UserError);
    await expect(distillStage(model, model, calib, ['W'], DEFAULT_CONFIG, silentProgress, { optional: false, maxEpochs: 30 })).rejects.toThrow(/--recovery distill: cannot differentiate Softplus node 'sp'/);
  });

  it('skips distillation under auto, saying why', async () => {
    const r = await distillStage(model, model, calib, ['W'], DEFAULT_CONFIG, silentProgress, { optional: true, maxEpochs: 30 });
    expect(r.kind).toBe('skipped');
    if (r.kind !== 'skipped') return;
    expect(r.gap).toEqual({ kind: 'op', op: 'Softplus', node: 'sp', detail: 'no gradient rule' });
    expect(skipReason(r.gap)).toMatch(/^no gradient for Softplus node 'sp'/);
  });
});

describe('prune-guard run --recovery distill', () => {
  const out = tempDir();
  let ledger: Ledger;
  beforeAll(async () => {
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--sparsity', '0.8', '--recovery', 'distill', '--out', out, '--quiet', ...FAST]);
    expect(r.stderr).not.toMatch(/error/i);
    ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
  }, 180_000);

  it('records the distilled model as a measured step with its cost and calibration gain, and ships it', () => {
    expect(validateLedger(ledger)).toEqual([]);
    const steps = ledger.models[0].steps;
    expect(steps.map((s) => s.name)).toEqual(['dense', 'prune', 'recover:distill']);
    const [, prune, rec] = steps;
    expect(rec.artifact).toBe(path.join(out, 'steps', '02-distill.onnx'));
    expect(fs.readFileSync(path.join(out, 'mlp.pruned.onnx')).equals(fs.readFileSync(rec.artifact))).toBe(true);
    expect(rec.recovery!.seconds).toBeGreaterThan(0);
    expect(rec.recovery!.calib_nll_after!).toBeLessThan(rec.recovery!.calib_nll_before!);
    expect(rec.description).toMatch(/KL to dense/);
    expect(rec.sparsity).toBe(prune.sparsity);
    expect(rec.accuracy!).toBeGreaterThan(prune.accuracy! + 0.02);
  });

  it('the distilled model passes onnx.checker', () => {
    expect(() => onnxCheck(ledger.models[0].steps[2].artifact)).not.toThrow();
  });
});
