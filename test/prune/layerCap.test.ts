import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cappedMagnitudeMask, magnitudePrune } from '../../src/prune/magnitude.js';
import { allocate } from '../../src/prune/structured/allocate.js';
import { structuredPrune } from '../../src/prune/structured/structuredPrune.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { countSparsity } from '../../src/prune/sparsity.js';
import { loadModel } from '../../src/onnx/model.js';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';

const NONE = { exclude: [], keepFirstLayer: false, keepLastLayer: false };
const zeros = (m: Uint8Array): number => m.reduce((s, v) => s + (1 - v), 0);

describe('cappedMagnitudeMask (max-layer-sparsity)', () => {
  it('caps the layer the global threshold would empty and hands the rest of k to the others', () => {
    const small = Float32Array.from([0.01, 0.02, 0.03, 0.04]); // would lose all 4 uncapped
    const big = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const [a0, b0] = cappedMagnitudeMask([small, big], 6, 1);
    expect([zeros(a0), zeros(b0)]).toEqual([4, 2]);
    const [a, b] = cappedMagnitudeMask([small, big], 6, 0.5);
    expect(Array.from(a)).toEqual([0, 0, 1, 1]); // exactly floor(0.5 * 4), its two smallest
    expect(Array.from(b)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]); // the other 4 of k, smallest first
  });

  it('repeats until no layer exceeds the cap (a second layer capped only after the first)', () => {
    const a = Float32Array.from([0.1, 0.1, 0.1, 0.1]);
    const b = Float32Array.from([0.2, 0.2, 0.2, 0.2]);
    const c = Float32Array.from([5, 6, 7, 8, 9, 10, 11, 12]);
    const masks = cappedMagnitudeMask([a, b, c], 10, 0.75);
    expect(masks.map(zeros)).toEqual([3, 3, 4]);
  });
});

describe('max-layer-sparsity on fixtures', () => {
  it('dsconv-concat global 80%, cap 0.85: no layer above the cap, overall still 80%, and uncapped some layer is above it', () => {
    const { proto } = loadModel(fixture('dsconv-concat.onnx'));
    const weights = prunableWeights(proto, NONE);
    const free = countSparsity(magnitudePrune(proto, weights, 0.8, 'global').model, weights);
    expect(Math.max(...free.layers.map((l) => l.sparsity))).toBeGreaterThan(0.85);
    const capped = countSparsity(magnitudePrune(proto, weights, 0.8, 'global', 0.85).model, weights);
    for (const l of capped.layers) expect(l.sparsity).toBeLessThanOrEqual(0.85);
    expect(Math.abs(capped.overall - 0.8)).toBeLessThan(1e-3);
  });

  it('structured allocation: no group loses more than the cap, the total target is kept', () => {
    const imp = new Map([[0, Float64Array.from([0.1, 0.2, 0.3, 10])], [1, Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8])]]);
    const groups = [{ root: 0, size: 4 }, { root: 1, size: 8 }];
    const free = allocate(groups, imp, { sparsity: 0.5, scope: 'global', roundTo: 1 });
    expect(free.get(0)).toBe(1);
    const kept = allocate(groups, imp, { sparsity: 0.5, scope: 'global', roundTo: 1, maxLayerSparsity: 0.5 });
    expect(kept.get(0)).toBe(2);
    expect(kept.get(0)! + kept.get(1)!).toBe(6);
  });

  it('structured dsconv-concat 30% with cap 0.3: every group keeps at least 70% of its channels', async () => {
    const { proto } = loadModel(fixture('dsconv-concat.onnx'));
    const r = await structuredPrune(proto, { sparsity: 0.3, scope: 'global', roundTo: 1, criterion: 'l1', protectedTensors: new Set(), maxLayerSparsity: 0.3 });
    const pruned = r.groups.filter((g) => !g.skip && g.size > 1);
    for (const g of pruned) expect(g.kept).toBeGreaterThanOrEqual(Math.ceil(g.size * 0.7 - 1e-9));
    const removed = pruned.reduce((s, g) => s + g.size - g.kept, 0) / pruned.reduce((s, g) => s + g.size, 0);
    expect(removed).toBeGreaterThan(0.25);
  });

  it('CLI: the saved model respects the cap, and a cap below the target is refused in one line', async () => {
    const out = tempDir();
    const common = ['run', '--model', fixture('dsconv-concat.onnx'), '--data', fixture('fmnist-test.npz'), '--sparsity', '0.8', '--recovery', 'none', '--warmup', '1', '--runs', '2', '--batch-sizes', '1', '--quiet'];
    const ok = await runCli([...common, '--out', out, '--max-layer-sparsity', '0.85']);
    expect(ok.code, ok.stderr).toBeLessThanOrEqual(1);
    const saved = loadModel(path.join(out, 'dsconv-concat.pruned.onnx')).proto;
    const weights = prunableWeights(loadModel(fixture('dsconv-concat.onnx')).proto, NONE);
    const counted = countSparsity(saved, weights);
    for (const l of counted.layers) expect(l.sparsity).toBeLessThanOrEqual(0.85);
    expect(Math.abs(counted.overall - 0.8)).toBeLessThan(1e-3);
    const bad = await runCli([...common, '--out', tempDir(), '--max-layer-sparsity', '0.5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.split('\n').filter((l) => /error/.test(l))).toHaveLength(1);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    expect(bad.stderr).toMatch(/--max-layer-sparsity 0\.5: below --sparsity 0\.8/);
    const layer = await runCli([...common, '--out', tempDir(), '--max-layer-sparsity', '0.9', '--scope', 'layer']);
    expect(layer.code).toBe(2);
    expect(layer.stderr).toMatch(/--max-layer-sparsity: .*--scope layer/);
  });
});
