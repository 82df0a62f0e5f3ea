import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../../src/data/dataset.js';
import { loadModel } from '../../../src/onnx/model.js';
import { modelInputs } from '../../../src/onnx/signature.js';
import { bnScaleImportance, magnitudeImportance, normAlongAxis } from '../../../src/prune/criteria/importance.js';
import { analyzeDependencies } from '../../../src/prune/structured/depgraph.js';
import { structuredPrune } from '../../../src/prune/structured/structuredPrune.js';
import { untieConstants } from '../../../src/prune/structured/untie.js';
import { fixture } from '../../support/fixtures.js';

describe('importance criteria', () => {
  const file = fixture('cnn-bn.onnx');
  const proto = untieConstants(loadModel(file).proto);
  const analysis = analyzeDependencies(proto);
  const prunable = analysis.groups.filter((g) => !g.skip);

  it('normAlongAxis sums |w| or w^2 per index of an axis', () => {
    const v = Float32Array.from([1, -2, 3, -4, 5, -6]);
    expect(Array.from(normAlongAxis(v, [2, 3], 1, 1))).toEqual([5, 7, 9]);
    expect(Array.from(normAlongAxis(v, [2, 3], 0, 2))).toEqual([14, 77]);
  });

  it('l1, l2 and bn-scale score every channel of every prunable group', () => {
    for (const imp of [magnitudeImportance(proto, analysis, 1), magnitudeImportance(proto, analysis, 2), bnScaleImportance(proto, analysis)]) {
      for (const g of prunable) {
        const s = imp.get(g.root)!;
        expect(s.length).toBe(g.size);
        expect(s.every((x) => x >= 0)).toBe(true);
      }
    }
  });

  it('activation criterion runs calibration data through onnxruntime and changes the choice of channels', async () => {
    const calib = loadDataset(fixture('fmnist-calib.npz'), modelInputs(proto, file), { requireLabels: false });
    const base = { sparsity: 0.5, scope: 'layer' as const, roundTo: 1, protectedTensors: new Set<string>(), calib };
    const act = await structuredPrune(proto, { ...base, criterion: 'activation' });
    const l1 = await structuredPrune(proto, { ...base, criterion: 'l1' });
    expect(act.groups.map((g) => g.kept)).toEqual(l1.groups.map((g) => g.kept));
    const differs = [...act.keep].some(([root, m]) => m.some((v, i) => v !== l1.keep.get(root)![i]));
    expect(differs).toBe(true);
  });

  it('activation criterion without calibration data is a user error', async () => {
    await expect(structuredPrune(proto, { sparsity: 0.5, scope: 'layer', roundTo: 1, protectedTensors: new Set(), criterion: 'activation' })).rejects.toThrow(/--calib/);
  });
});
