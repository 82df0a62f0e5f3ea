import { describe, expect, it } from 'vitest';
import { loadDataset, type Dataset } from '../../src/data/dataset.js';
import { loadModel } from '../../src/onnx/model.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { calibScorer, evenSubset } from '../../src/prune/sensitivity/calibScorer.js';
import { groupUnits, sensitivityCurves, weightUnits } from '../../src/prune/sensitivity/sensitivityCurves.js';
import { sensitivityPrune } from '../../src/prune/sensitivity/sensitivityPrune.js';
import { countSparsity } from '../../src/prune/sparsity.js';
import { calibScore } from '../../src/recover/calibScore.js';
import { DEFAULT_CONFIG } from '../../src/config/schema.js';
import { fixture } from '../support/fixtures.js';

function load(name: string): { proto: ReturnType<typeof loadModel>['proto']; calib: Dataset } {
  const file = fixture(name);
  const { proto } = loadModel(file);
  return { proto, calib: loadDataset(fixture('fmnist-calib.npz'), modelInputs(proto, file), { requireLabels: true }) };
}

describe('sensitivity curves on cnn-bn', () => {
  it('ratio 0 is the dense score, and pruning a layer more never helps NLL by much', async () => {
    const { proto, calib } = load('cnn-bn.onnx');
    const scorer = await calibScorer(proto, calib, { maxSamples: 128 });
    expect(scorer.against).toBe('labels');
    // the dense point agrees with the recovery's own calibration score on the same samples
    const reference = await calibScore(proto, evenSubset(calib, scorer.samples));
    expect(scorer.dense.nll).toBeCloseTo(reference.nll, 4);
    expect(scorer.dense.accuracy).toBeCloseTo(reference.accuracy, 6);
    const units = weightUnits(proto, prunableWeights(proto, { exclude: [], keepFirstLayer: false, keepLastLayer: false }));
    // a unit pruned to 0 is the dense model again
    const zero = await scorer.score(await units[1].pruneAlone(0));
    expect(zero.nll).toBeCloseTo(scorer.dense.nll, 5);
    const curves = await sensitivityCurves(units, scorer, [0.5, 0.9]);
    expect(curves).toHaveLength(units.length);
    for (const c of curves) {
      expect(c.points[0]).toEqual({ ratio: 0, calib_nll: scorer.dense.nll, calib_accuracy: scorer.dense.accuracy });
      for (let i = 1; i < c.points.length; i++) expect(c.points[i].calib_nll).toBeGreaterThan(c.points[i - 1].calib_nll - 0.05);
    }
    // pruning 90% of some layer alone costs something measurable
    expect(Math.max(...curves.map((c) => c.points.at(-1)!.calib_nll))).toBeGreaterThan(scorer.dense.nll + 0.01);
    // the shared working copy is dense again afterwards
    const again = await scorer.score(await units[0].pruneAlone(0));
    expect(again.nll).toBeCloseTo(scorer.dense.nll, 5);
  });

  it('without labels compares with the dense model: KL 0 and agreement 1 at ratio 0', async () => {
    const { proto, calib } = load('mlp.onnx');
    const scorer = await calibScorer(proto, { ...calib, labels: null }, { maxSamples: 64 });
    expect(scorer.against).toBe('dense');
    expect(scorer.dense).toEqual({ nll: 0, accuracy: 1 });
    const units = weightUnits(proto, prunableWeights(proto, { exclude: [], keepFirstLayer: false, keepLastLayer: false }));
    const s = await scorer.score(await units[0].pruneAlone(0.9));
    expect(s.nll).toBeGreaterThan(0);
    expect(s.accuracy).toBeLessThan(1);
  });

  it('unstructured allocation prunes each layer to exactly its allocated count and meets the target', async () => {
    const { proto, calib } = load('mlp.onnx');
    const weights = prunableWeights(proto, { exclude: [], keepFirstLayer: false, keepLastLayer: false });
    const r = await sensitivityPrune(proto, { method: 'unstructured', sparsity: 0.8, calib, weights, protectedTensors: new Set(), config: DEFAULT_CONFIG });
    const counted = countSparsity(r.model, weights);
    const total = weights.reduce((n, w) => n + w.dims.reduce((a, b) => a * b, 1), 0);
    expect(counted.zeros).toBe(Math.round(0.8 * total));
    counted.layers.forEach((l, i) => expect(l.zeros).toBe(Math.round(r.sensitivity.layers[i].allocated * l.total)));
    expect(new Set(r.sensitivity.layers.map((l) => l.allocated.toFixed(3))).size).toBeGreaterThan(1);
  });

  it('structured: each group is pruned alone and the allocation feeds per-group channel counts', async () => {
    const { proto, calib } = load('cnn-bn.onnx');
    const units = groupUnits(proto, { roundTo: 1, criterion: 'l1', protectedTensors: new Set() });
    expect(units.length).toBeGreaterThan(0);
    const r = await sensitivityPrune(proto, { method: 'structured', sparsity: 0.5, calib, weights: [], protectedTensors: new Set(), config: DEFAULT_CONFIG });
    const removed = r.sensitivity.layers.reduce((n, l) => n + Math.round(l.allocated * l.size), 0);
    const channels = r.sensitivity.layers.reduce((n, l) => n + l.size, 0);
    expect(removed).toBe(Math.round(0.5 * channels));
    expect(r.sensitivity.unit).toBe('channels');
    expect(r.description).toMatch(/structured channel pruning/);
  });
});
