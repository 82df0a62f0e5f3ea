import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { allocate, keepMask, roundKept } from '../../../src/prune/structured/allocate.js';
import { loadModel, saveModel } from '../../../src/onnx/model.js';
import { analyzeDependencies } from '../../../src/prune/structured/depgraph.js';
import { removeChannels, zeroFanIn } from '../../../src/prune/structured/surgery.js';
import { structuredPrune } from '../../../src/prune/structured/structuredPrune.js';
import { countSparsity } from '../../../src/prune/sparsity.js';
import { prunableWeights } from '../../../src/prune/prunable.js';
import { runCli } from '../../support/cli.js';
import { GraphIndex } from '../../../src/onnx/graph.js';
import { tensorDims } from '../../../src/onnx/tensor.js';
import { fixture, tempDir } from '../../support/fixtures.js';
import { onnxCheck } from '../../support/onnxChecker.js';
import { alternateKeep, maxRelDiff, randomFeeds, runModel } from './exactness.js';

describe('allocation', () => {
  it('never prunes a group to zero and rounds kept counts to multiples', () => {
    expect(roundKept(0, 16, 1)).toBe(1);
    expect(roundKept(13, 64, 8)).toBe(16);
    expect(roundKept(2, 64, 8)).toBe(8);
    expect(roundKept(5, 6, 8)).toBe(6);
  });

  it('global scope removes the target fraction of channels overall, lowest normalised scores first', () => {
    const imp = new Map([[0, Float64Array.from([1, 2, 3, 4])], [1, Float64Array.from([10, 10, 10, 0.1])]]);
    const kept = allocate([{ root: 0, size: 4 }, { root: 1, size: 4 }], imp, { sparsity: 0.5, scope: 'global', roundTo: 1 });
    expect(kept.get(0)! + kept.get(1)!).toBe(4);
    expect(Array.from(keepMask(imp.get(1)!, 3))).toEqual([1, 1, 1, 0]);
  });
});

describe('exactness check can fail', () => {
  it('a reference zeroing different channels than the surgery removed does not match', async () => {
    const file = fixture('cnn-bn.onnx');
    const { proto } = loadModel(file);
    const a = analyzeDependencies(proto);
    const g = a.groups.find((x) => !x.skip)!;
    const keep = alternateKeep(a, g.root);
    const wrong = new Map([[g.root, keep.get(g.root)!.map((v) => 1 - v)]]);
    const dir = tempDir();
    saveModel(removeChannels(proto, a, keep), path.join(dir, 'p.onnx'));
    saveModel(zeroFanIn(proto, a, wrong), path.join(dir, 'r.onnx'));
    const feeds = randomFeeds(proto);
    expect(maxRelDiff(await runModel(path.join(dir, 'p.onnx'), feeds), await runModel(path.join(dir, 'r.onnx'), feeds))).toBeGreaterThan(1e-3);
  });
});

describe('structuredPrune on all groups at once', () => {
  it.each(['resnet.onnx', 'dsconv-concat.onnx', 'mlp.onnx'])('%s at 0.5: exact, valid, and the weights really shrink', async (name) => {
    const file = fixture(name);
    const { proto } = loadModel(file);
    const r = await structuredPrune(proto, { sparsity: 0.5, scope: 'layer', roundTo: 1, criterion: 'l1', protectedTensors: new Set() });
    const dir = tempDir();
    const p = path.join(dir, 'p.onnx');
    saveModel(r.model, p);
    saveModel(zeroFanIn(r.base, r.analysis, r.keep), path.join(dir, 'r.onnx'));
    onnxCheck(p);
    const feeds = randomFeeds(proto);
    expect(maxRelDiff(await runModel(p, feeds), await runModel(path.join(dir, 'r.onnx'), feeds))).toBeLessThan(1e-4);
    const s = countSparsity(r.model, prunableWeights(proto, { exclude: [], keepFirstLayer: false, keepLastLayer: false }));
    expect(s.overall).toBeGreaterThan(0.3);
    expect(r.groups.filter((g) => g.skip).every((g) => g.kept === g.size)).toBe(true);
  }, 60_000);
});

describe('CLI --method structured', () => {
  it('writes a smaller valid model and states channels, parameters and MACs removed', async () => {
    const out = tempDir();
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--out', out, '--method', 'structured', '--sparsity', '0.5', '--round-to', '8', '--criterion', 'l2', '--runs', '2', '--warmup', '1', '--batch-sizes', '4', '--quiet']);
    expect([0, 1]).toContain(r.code);
    const pruned = path.join(out, 'mlp.pruned.onnx');
    expect(fs.statSync(pruned).size).toBeLessThan(fs.statSync(fixture('mlp.onnx')).size * 0.7);
    onnxCheck(pruned);
    const ledger = fs.readFileSync(path.join(out, 'ledger.json'), 'utf8');
    expect(ledger).toMatch(/structured channel pruning \(l2, global\).*parameters -\d+\.\d%, MACs -\d+\.\d%/);
  }, 120_000);
});

describe('--method hybrid', () => {
  it('removes channels first, then zeroes remaining weights by magnitude up to the target', async () => {
    const { pruneModel } = await import('../../../src/prune/pruneModel.js');
    const { DEFAULT_CONFIG } = await import('../../../src/config/schema.js');
    const { proto } = loadModel(fixture('cnn-bn.onnx'));
    const config = { ...structuredClone(DEFAULT_CONFIG), method: 'hybrid' as const, sparsity: 0.8 };
    const r = await pruneModel(proto, config, { modelPath: 'cnn-bn.onnx' });
    const s = countSparsity(r.model, r.denseWeights);
    expect(s.overall).toBeGreaterThan(0.79);
    expect(s.overall).toBeLessThan(0.81);
    expect(r.description).toMatch(/^structured channel pruning .*; then unstructured magnitude/);
    // channels really went: the weights are stored smaller, not only zeroed
    const stored = new GraphIndex(r.model.graph!).initializers.get(r.denseWeights[1].initializer)!;
    expect(tensorDims(stored)[0]).toBeLessThan(r.denseWeights[1].dims[0]);
  });
});
