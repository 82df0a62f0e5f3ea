import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/model.js';
import { modelCost } from '../../src/onnx/flops.js';
import { fixture, present, realWorld } from '../support/fixtures.js';

describe('parameter and MAC counts', () => {
  it('MLP 784-128-64-10: MACs are the three matrix sizes', () => {
    const c = modelCost(loadModel(fixture('mlp.onnx')).proto);
    expect(c.macs).toBe(784 * 128 + 128 * 64 + 64 * 10);
    expect(c.params).toBe(784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10);
    expect(c.uncounted).toEqual([]);
  });

  it('CNN with BatchNorm: Conv MACs = output elements x fan-in, by hand', () => {
    const c = modelCost(loadModel(fixture('cnn-bn.onnx')).proto);
    const convs = c.nodes.filter((n) => n.opType === 'Conv').map((n) => n.macs);
    expect(convs).toEqual([28 * 28 * 16 * 9, 14 * 14 * 32 * 16 * 9, 7 * 7 * 64 * 32 * 9]);
  });

  it('model trained elsewhere (Constant shape + Reshape): every MAC node counted', () => {
    const c = modelCost(loadModel(present(realWorld('model.onnx'))).proto);
    expect(c.params).toBe(421_642);
    expect(c.uncounted).toEqual([]);
    expect(c.nodes.map((n) => n.macs)).toEqual([28 * 28 * 32 * 9, 14 * 14 * 64 * 32 * 9, 3136 * 128, 128 * 10]);
  });
});
