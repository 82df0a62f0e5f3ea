/**
 * Exporters alias deduplicated constants through Identity nodes; resolving the aliases lets a rewrite see
 * the initializer behind them, without changing what the model computes or the input model.
 */
import { describe, expect, it } from 'vitest';
import { resolveConstantAliases } from '../../src/onnx/aliases.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { loadModel } from '../../src/onnx/model.js';
import { fixture } from '../support/fixtures.js';
import { aliasConvBiases, firstPredictions } from '../support/aliasedBiases.js';

describe('resolving Identity aliases of constants', () => {
  it('points every reader at the initializer, drops the Identity nodes and computes the same', async () => {
    const { proto } = loadModel(fixture('resnet.onnx'));
    const aliased = proto.graph!.node.filter((n) => n.opType === 'Identity').length;
    expect(aliased).toBeGreaterThan(0);
    const out = resolveConstantAliases(proto);
    expect(proto.graph!.node.filter((n) => n.opType === 'Identity').length).toBe(aliased);
    expect(out.graph!.node.some((n) => n.opType === 'Identity')).toBe(false);
    const index = new GraphIndex(out.graph!);
    for (const bn of out.graph!.node.filter((n) => n.opType === 'BatchNormalization')) for (const p of bn.input.slice(1)) expect(index.initializers.has(p)).toBe(true);
    expect(await firstPredictions(out)).toEqual(await firstPredictions(proto));
  });

  it('resolves an aliased Conv bias, and readers keep sharing one constant', () => {
    const model = aliasConvBiases(loadModel(fixture('cnn-bn.onnx')).proto);
    const out = resolveConstantAliases(model);
    const index = new GraphIndex(out.graph!);
    const convs = out.graph!.node.filter((n) => n.opType === 'Conv');
    for (const c of convs) expect(index.initializers.has(c.input[2])).toBe(true);
    expect(out.graph!.initializer.length).toBe(model.graph!.initializer.length);
  });
});
