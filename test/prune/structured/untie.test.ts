import { describe, expect, it } from 'vitest';
import { loadModel } from '../../../src/onnx/model.js';
import { GraphIndex } from '../../../src/onnx/graph.js';
import { untieConstants } from '../../../src/prune/structured/untie.js';
import { fixture } from '../../support/fixtures.js';

describe('untieConstants', () => {
  it('gives each reader of an Identity-aliased BatchNorm bias its own copy and leaves the input untouched', () => {
    const { proto } = loadModel(fixture('resnet.onnx'));
    const before = proto.graph!.node.length;
    const out = untieConstants(proto);
    expect(proto.graph!.node.length).toBe(before);
    expect(out.graph!.node.some((n) => n.opType === 'Identity')).toBe(false);
    const index = new GraphIndex(out.graph!);
    const bn = out.graph!.node.filter((n) => n.opType === 'BatchNormalization');
    const biases = bn.map((n) => n.input[2]);
    expect(new Set(biases).size).toBe(biases.length);
    for (const b of biases) expect(index.initializers.has(b)).toBe(true);
  });
});
