import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { liftCastWeights } from '../../src/onnx/castWeights.js';
import { cloneModel, loadModel, saveModel } from '../../src/onnx/model.js';
import { DataType, tensorToFloat32 } from '../../src/onnx/tensor.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { magnitudePrune } from '../../src/prune/magnitude.js';
import { hasOnnxChecker, onnxCheck } from '../support/onnxChecker.js';
import { FIXTURES, tempDir } from '../support/fixtures.js';

const BF16 = path.join(FIXTURES, 'exports', 'cnn-bf16w.onnx');
const ALL = { exclude: [], keepFirstLayer: false, keepLastLayer: false };

describe('weights stored as bfloat16 behind a Cast', () => {
  it('are hidden from pruning as exported, and found once lifted', () => {
    const model = loadModel(BF16).proto;
    expect(prunableWeights(model, ALL)).toHaveLength(0);
    const lifted = liftCastWeights(model);
    expect(lifted).toHaveLength(8);
    expect(lifted.every((l) => l.type === DataType.BFLOAT16)).toBe(true);
    expect(model.graph!.node.some((n) => n.opType === 'Cast')).toBe(false);
    expect(prunableWeights(model, ALL).map((w) => w.opType)).toEqual(['Conv', 'Conv', 'Conv', 'Gemm']);
  });

  it('save back byte-identical when unchanged', () => {
    const model = loadModel(BF16).proto;
    liftCastWeights(model);
    const out = path.join(tempDir(), 'same.onnx');
    saveModel(model, out);
    expect(fs.readFileSync(out).equals(fs.readFileSync(BF16))).toBe(true);
  });

  it('are pruned as float32 and written back as bfloat16 behind the same Cast', () => {
    const model = loadModel(BF16).proto;
    liftCastWeights(model);
    const weights = prunableWeights(model, ALL);
    const pruned = magnitudePrune(cloneModel(model), weights, 0.5, 'global').model;
    const out = path.join(tempDir(), 'pruned.onnx');
    saveModel(pruned, out);
    const saved = loadModel(out).proto;
    const original = loadModel(BF16).proto;
    expect(saved.graph!.node.map((n) => n.opType)).toEqual(original.graph!.node.map((n) => n.opType));
    expect(saved.metadataProps.map((e) => e.key)).not.toContain('prune-guard.lifted-weights');
    let zeros = 0;
    let total = 0;
    for (const w of weights) {
      const t = saved.graph!.initializer.find((i) => i.name === w.initializer)!;
      expect(t.dataType).toBe(DataType.BFLOAT16);
      const v = tensorToFloat32(t);
      total += v.length;
      for (const x of v) if (x === 0) zeros++;
    }
    expect(zeros / total).toBeCloseTo(0.5, 2);
    if (hasOnnxChecker) onnxCheck(out);
  });
});
