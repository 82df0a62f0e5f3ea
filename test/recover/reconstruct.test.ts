import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, takeSamples, type Dataset } from '../../src/data/dataset.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { loadModel } from '../../src/onnx/model.js';
import type { ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { tensorToFloat32 } from '../../src/onnx/tensor.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { magnitudePrune } from '../../src/prune/magnitude.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { reestimateBatchNorm } from '../../src/recover/batchNorm.js';
import { calibScore } from '../../src/recover/calibScore.js';
import { linearLayer } from '../../src/recover/layers.js';
import { layerPatches } from '../../src/recover/patches.js';
import { DEFAULT_RECONSTRUCT, reconstruct } from '../../src/recover/reconstruct.js';
import { captureActivations, sessionFromModel } from '../../src/onnx/runtime/session.js';
import { withExtraOutputs } from '../../src/onnx/subgraph.js';
import { layerSkipText } from '../../src/recover/refusals.js';
import { fixture } from '../support/fixtures.js';

const ALL = { exclude: [], keepFirstLayer: false, keepLastLayer: false };

function load(name: string): { model: ModelProto; calib: Dataset; test: Dataset } {
  const model = loadModel(fixture(name)).proto;
  const inputs = modelInputs(model, name);
  return {
    model,
    calib: loadDataset(fixture('fmnist-calib.npz'), inputs, { requireLabels: true }),
    // a fixed slice of the test set keeps this file fast
    test: takeSamples(loadDataset(fixture('fmnist-test.npz'), inputs, { requireLabels: true }), Array.from({ length: 1000 }, (_, i) => i * 2)),
  };
}

describe('im2col patches', () => {
  it('W . patch equals the Conv output onnxruntime computes at the sampled positions', async () => {
    const { model, calib } = load('cnn-bn.onnx');
    const index = new GraphIndex(model.graph!);
    const layer = linearLayer(index, 'features.2.0.weight');
    if (typeof layer === 'string') throw new Error(layer);
    const conv = index.consumersOf('features.2.0.weight')[0];
    const small = takeSamples(calib, [0, 1, 2]);
    const session = await sessionFromModel(withExtraOutputs(model, [layer.input, conv.output[0]]));
    const acts = await captureActivations(session, small, [layer.input, conv.output[0]]);
    await session.release();
    const x = acts.get(layer.input)!;
    const y = acts.get(conv.output[0])!;
    const [, , oh, ow] = y.dims;
    const { perGroup, cols } = layerPatches(layer, x, true, 1_000_000);
    const w = tensorToFloat32(index.initializers.get('features.2.0.weight')!);
    const bias = conv.input[2] ? tensorToFloat32(index.initializers.get(conv.input[2])!) : new Float32Array(layer.rows);
    // every position is taken when the budget exceeds them, in sample, y, x order
    for (const p of [0, 5, oh * ow + 17, 3 * oh * ow - 1]) {
      const s = Math.floor(p / (oh * ow));
      const pos = p % (oh * ow);
      for (const o of [0, 7, layer.rows - 1]) {
        let v = 0;
        for (let c = 0; c < layer.cols; c++) v += w[o * layer.cols + c] * perGroup[0][p * cols + c];
        v += bias[o] * perGroup[0][p * cols + cols - 1];
        expect(v).toBeCloseTo(y.data[(s * layer.rows + o) * oh * ow + pos], 3);
      }
    }
  });
});

describe.each([
  { name: 'mlp.onnx', sparsity: 0.8 },
  { name: 'cnn-bn.onnx', sparsity: 0.5 },
])('reconstruct $name at $sparsity', ({ name, sparsity }) => {
  let dense: ModelProto;
  let pruned: ModelProto;
  let refit: Awaited<ReturnType<typeof reconstruct>>;
  let data: ReturnType<typeof load>;
  const weights = () => prunableWeights(dense, ALL);

  beforeAll(async () => {
    data = load(name);
    dense = data.model;
    pruned = magnitudePrune(dense, weights(), sparsity, 'global').model;
    refit = await reconstruct(dense, pruned, weights().map((w) => w.initializer), data.calib);
  }, 60_000);

  it('keeps every pruned weight at zero and leaves the same number of zeros', () => {
    const p = new GraphIndex(pruned.graph!);
    const r = new GraphIndex(refit.model.graph!);
    for (const w of weights()) {
      const before = tensorToFloat32(p.initializers.get(w.initializer)!);
      const after = tensorToFloat32(r.initializers.get(w.initializer)!);
      let changed = 0;
      const revived: number[] = [];
      for (let i = 0; i < before.length; i++) {
        if (before[i] === 0 && after[i] !== 0) revived.push(i);
        else if (after[i] !== before[i]) changed++;
      }
      expect(revived, w.initializer).toEqual([]);
      expect(changed).toBeGreaterThan(0);
    }
  });

  it('lowers every layer output error against the dense model', () => {
    expect(refit.skipped).toEqual([]);
    expect(refit.layers.length).toBe(weights().length);
    for (const l of refit.layers) expect(l.error_after).toBeLessThan(l.error_before);
  });

  it('recovers held-out accuracy that magnitude pruning lost', async () => {
    const d = await calibScore(dense, data.test);
    const p = await calibScore(pruned, data.test);
    const r = await calibScore(refit.model, data.test);
    expect(r.accuracy).toBeGreaterThan(p.accuracy);
    expect(d.accuracy - r.accuracy).toBeLessThan(0.015);
  });
});

describe('BatchNorm re-estimation', () => {
  it('sets running statistics to the calibration statistics of the pruned model and helps a magnitude-pruned CNN', async () => {
    const { model, calib, test } = load('cnn-bn.onnx');
    const pruned = magnitudePrune(model, prunableWeights(model, ALL), 0.7, 'global').model;
    const r = await reestimateBatchNorm(pruned, calib);
    expect(r.nodes.length).toBe(3);
    // the first BN sees the first conv's output: its new mean is that output's mean over calib
    const index = new GraphIndex(r.model.graph!);
    const bn = index.order.find((n) => n.opType === 'BatchNormalization')!;
    const s = await sessionFromModel(withExtraOutputs(r.model, [bn.input[0]]));
    const x = (await captureActivations(s, calib, [bn.input[0]])).get(bn.input[0])!;
    await s.release();
    const [n, c, h, w] = x.dims;
    let sum = 0;
    for (let k = 0; k < n; k++) for (let i = 0; i < h * w; i++) sum += x.data[(k * c) * h * w + i];
    expect(tensorToFloat32(index.initializers.get(bn.input[3])!)[0]).toBeCloseTo(sum / (n * h * w), 4);
    expect((await calibScore(r.model, test)).accuracy).toBeGreaterThan((await calibScore(pruned, test)).accuracy);
  });
});

describe('reconstruct after the safety stop fired', () => {
  it('refits no layer and says why for each', async () => {
    const { model, calib } = load('mlp.onnx');
    const weights = prunableWeights(model, ALL);
    const pruned = magnitudePrune(model, weights, 0.5, 'global').model;
    const r = await reconstruct(model, pruned, weights.map((w) => w.initializer), calib, { ...DEFAULT_RECONSTRUCT, maxPatches: 1024, maxBlock: 1024, threads: 0, stop: { limitSeconds: 1, passed: () => true, elapsedSeconds: () => 2 } });
    expect(r.layers).toEqual([]);
    expect(r.skipped.map((s) => s.reason)).toEqual(weights.map(() => ({ kind: 'time' })));
    expect(r.skipped.map((s) => layerSkipText(s.reason))).toEqual(weights.map(() => 'cut short: the recovery-time-budget safety stop had fired'));
  });
});
