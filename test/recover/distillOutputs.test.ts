import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, takeSamples, type Dataset } from '../../src/data/dataset.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { loadModel, saveModel } from '../../src/onnx/model.js';
import type { ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { tensorToFloat32 } from '../../src/onnx/tensor.js';
import { magnitudePrune } from '../../src/prune/magnitude.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { DEFAULT_DISTILL, distill, type DistillResult } from '../../src/recover/distill/distill.js';
import { relativeSquaredError } from '../../src/recover/distill/loss.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { onnxCheck } from '../support/onnxChecker.js';

const ALL = { exclude: [], keepFirstLayer: false, keepLastLayer: false };

describe('relativeSquaredError', () => {
  it('is the mean over outputs of ‖s − t‖² / ‖t‖², an all-zero dense output counting 0', () => {
    const student = new Map([['a', [1, 2]], ['b', [0, 1]], ['c', [3]]]);
    const dense = new Map([['a', [1, 0]], ['b', [0, 2]], ['c', [0]]]);
    // a: 4 / 1; b: 1 / 4; c: 0
    expect(relativeSquaredError(student, dense)).toBeCloseTo((4 + 0.25 + 0) / 3, 12);
  });
});

describe('distillation toward the dense outputs of a two-output detector (no head, no labels)', () => {
  let dense: ModelProto;
  let pruned: ModelProto;
  let weights: string[];
  let r: DistillResult;
  beforeAll(async () => {
    dense = loadModel(fixture('exports/detector.onnx')).proto;
    const calib: Dataset = takeSamples(loadDataset(fixture('exports/fmnist-unlabelled.npz'), modelInputs(dense, 'detector'), { requireLabels: false }), Array.from({ length: 120 }, (_, i) => i));
    const ws = prunableWeights(dense, ALL);
    weights = ws.map((w) => w.initializer);
    pruned = magnitudePrune(dense, ws, 0.6, 'global').model;
    r = await distill(dense, pruned, calib, new Set(weights), { ...DEFAULT_DISTILL, maxEpochs: 4, batch: 32 }, { outputs: ['boxes', 'scores'] });
  }, 120_000);

  it('lowers the held-out relative squared error of the outputs', () => {
    expect(r.improved).toBe(true);
    expect(r.after.kl).toBeLessThan(r.before.kl);
    expect(r.after.accuracy).toBeUndefined();
    expect(r.epochs.every((e) => Number.isFinite(e.train_loss) && e.train_loss > 0)).toBe(true);
  });

  it('keeps every pruned zero and a model onnx.checker accepts', () => {
    const before = new GraphIndex(pruned.graph!);
    const after = new GraphIndex(r.model.graph!);
    for (const w of weights) {
      const a = tensorToFloat32(before.initializers.get(w)!);
      const b = tensorToFloat32(after.initializers.get(w)!);
      for (let i = 0; i < a.length; i++) if (a[i] === 0) expect(b[i]).toBe(0);
    }
    const file = path.join(tempDir(), 'distilled.onnx');
    saveModel(r.model, file);
    expect(() => onnxCheck(file)).not.toThrow();
  });
});
