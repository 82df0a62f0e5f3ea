import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { magnitudeMask, magnitudePrune } from '../../src/prune/magnitude.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { countSparsity } from '../../src/prune/sparsity.js';
import { loadModel } from '../../src/onnx/model.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { tensorToFloat32 } from '../../src/onnx/tensor.js';
import { fixture } from '../support/fixtures.js';

const NONE = { exclude: [], keepFirstLayer: false, keepLastLayer: false };

describe('magnitudeMask', () => {
  it('zeroes exactly k entries, the smallest in magnitude', () => {
    const a = Float32Array.from([0.5, -0.1, 0.3, -0.9]);
    const b = Float32Array.from([0.05, 2, -0.2]);
    const [ma, mb] = magnitudeMask([a, b], 3);
    expect(Array.from(ma)).toEqual([1, 0, 1, 1]);
    expect(Array.from(mb)).toEqual([0, 1, 0]);
  });

  it('breaks ties at the threshold so the count is exact', () => {
    const a = Float32Array.from([1, 1, 1, 1, 1, 1]);
    const [m] = magnitudeMask([a], 4);
    expect(m.reduce((s, v) => s + (1 - v), 0)).toBe(4);
  });
});

describe('magnitudePrune on the fixture CNN', () => {
  const file = fixture('cnn-bn.onnx');
  const { proto } = loadModel(file);
  const weights = prunableWeights(proto, NONE);

  it('finds only Conv and Gemm weights (no biases, no BatchNorm parameters)', () => {
    expect(weights.length).toBeGreaterThanOrEqual(4);
    expect(weights.every((w) => w.opType === 'Conv' || w.opType === 'Gemm')).toBe(true);
    expect(weights.every((w) => w.dims.length >= 2)).toBe(true);
  });

  it.each([0.3, 0.5, 0.8, 0.95])('global %s: counted sparsity equals the target', (s) => {
    const r = magnitudePrune(proto, weights, s, 'global');
    const counted = countSparsity(r.model, weights);
    expect(Math.abs(counted.overall - s)).toBeLessThan(1e-4);
  });

  it('per-layer scope prunes every layer to the target', () => {
    const r = magnitudePrune(proto, weights, 0.6, 'layer');
    for (const l of countSparsity(r.model, weights).layers) expect(Math.abs(l.sparsity - 0.6)).toBeLessThan(0.01);
  });

  it('leaves the input model untouched and surviving weights unchanged', () => {
    const before = fs.readFileSync(file);
    const r = magnitudePrune(proto, weights, 0.5, 'global');
    const orig = new GraphIndex(proto.graph!);
    const next = new GraphIndex(r.model.graph!);
    for (const w of weights) {
      const a = tensorToFloat32(orig.initializers.get(w.initializer)!);
      const b = tensorToFloat32(next.initializers.get(w.initializer)!);
      const changed: number[] = [];
      for (let i = 0; i < a.length; i++) if (b[i] !== 0 && b[i] !== a[i]) changed.push(i);
      expect(changed, w.initializer).toEqual([]);
    }
    expect(countSparsity(proto, weights).overall).toBeLessThan(0.01);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it('exclude globs and keep-first/last layer keep those weights dense', () => {
    const kept = prunableWeights(proto, { exclude: [weights[1].initializer], keepFirstLayer: true, keepLastLayer: true });
    const names = kept.map((w) => w.initializer);
    expect(names).not.toContain(weights[0].initializer);
    expect(names).not.toContain(weights[1].initializer);
    expect(names).not.toContain(weights[weights.length - 1].initializer);
    expect(names.length).toBe(weights.length - 3);
  });
});

describe.each(['vit.onnx', 'exports/vit-einsum.onnx', 'exports/vit-fusedqkv.onnx'])('magnitudePrune on the trained ViT exported as %s', (file) => {
  it('prunes the same projection weights to the target exactly, whatever the attention layout', () => {
    const { proto } = loadModel(fixture(file));
    const weights = prunableWeights(proto, NONE);
    // patch conv, 2 blocks of (Q, K, V or one QKV, output, FFN in, FFN out), classifier
    expect(weights.length).toBe(file.includes('fusedqkv') ? 10 : 14);
    const r = magnitudePrune(proto, weights, 0.5, 'global');
    expect(Math.abs(countSparsity(r.model, weights).overall - 0.5)).toBeLessThan(1e-4);
  });
});
