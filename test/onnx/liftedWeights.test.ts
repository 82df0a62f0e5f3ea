import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { liftWeights } from '../../src/onnx/liftedWeights.js';
import { cloneModel, loadModel, saveModel } from '../../src/onnx/model.js';
import { DataType, tensorToFloat32 } from '../../src/onnx/tensor.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { magnitudePrune } from '../../src/prune/magnitude.js';
import { onnxCheck } from '../support/onnxChecker.js';
import { FIXTURES, realWorldDir, tempDir } from '../support/fixtures.js';

const BF16 = path.join(FIXTURES, 'exports', 'cnn-bf16w.onnx');
const ALL = { exclude: [], keepFirstLayer: false, keepLastLayer: false };

describe('a MatMul weight behind a constant Reshape (CNTK)', () => {
  it('is found once lifted, and saved back as it was when unchanged', () => {
    const file = path.join(realWorldDir('mnist-8-cntk'), 'model.onnx');
    const model = loadModel(file).proto;
    expect(prunableWeights(model, ALL).map((w) => w.opType)).toEqual(['Conv', 'Conv']);
    expect(liftWeights(model)).toEqual([{ weight: 'Parameter193', by: 'Reshape', type: DataType.FLOAT }]);
    const w = prunableWeights(model, ALL);
    expect(w.map((x) => x.opType)).toEqual(['Conv', 'Conv', 'MatMul']);
    expect(w[2].dims).toEqual([256, 10]);
    const out = path.join(tempDir(), 'same.onnx');
    saveModel(model, out);
    // the same graph, inputs and values (CNTK keeps weights in float_data; they come back as raw bytes)
    const [a, b] = [loadModel(out).proto.graph!, loadModel(file).proto.graph!];
    expect(a.node).toEqual(b.node);
    expect(a.input).toEqual(b.input);
    expect(a.initializer.map((t) => [t.name, t.dataType, t.dims])).toEqual(b.initializer.map((t) => [t.name, t.dataType, t.dims]));
    a.initializer.forEach((t, i) => expect(tensorToFloat32(t)).toEqual(tensorToFloat32(b.initializer[i])));
  });
});

describe('weights stored as bfloat16 behind a Cast', () => {
  it('are hidden from pruning as exported, and found once lifted', () => {
    const model = loadModel(BF16).proto;
    expect(prunableWeights(model, ALL)).toHaveLength(0);
    const lifted = liftWeights(model);
    expect(lifted).toHaveLength(8);
    expect(lifted.every((l) => l.type === DataType.BFLOAT16 && l.by === 'Cast')).toBe(true);
    expect(model.graph!.node.some((n) => n.opType === 'Cast')).toBe(false);
    expect(prunableWeights(model, ALL).map((w) => w.opType)).toEqual(['Conv', 'Conv', 'Conv', 'Gemm']);
  });

  it('save back byte-identical when unchanged', () => {
    const model = loadModel(BF16).proto;
    liftWeights(model);
    const out = path.join(tempDir(), 'same.onnx');
    saveModel(model, out);
    expect(fs.readFileSync(out).equals(fs.readFileSync(BF16))).toBe(true);
  });

  it('are pruned as float32 and written back as bfloat16 behind the same Cast', () => {
    const model = loadModel(BF16).proto;
    liftWeights(model);
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
    onnxCheck(out);
  });
});
