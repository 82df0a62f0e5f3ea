import { describe, expect, it } from 'vitest';
import { einsumMacs, einsumShape, parseEinsum } from '../../src/onnx/einsum.js';
import { modelCost } from '../../src/onnx/flops.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { loadModel } from '../../src/onnx/model.js';
import { inferShapes } from '../../src/onnx/shapes.js';
import { fixture } from '../support/fixtures.js';

describe('Einsum equations', () => {
  it('attention scores: batch labels kept, the head width contracted', () => {
    const e = parseEinsum('bqhd,bkhd->bhqk', [4, 4]);
    expect(e.output).toEqual(['b', 'h', 'q', 'k']);
    expect(einsumShape(e, [[2, 16, 4, 8], [2, 16, 4, 8]])).toEqual([2, 4, 16, 16]);
    // every (b, h, q, k, d) is one multiply-accumulate
    expect(einsumMacs(e, [[2, 16, 4, 8], [2, 16, 4, 8]])).toBe(2 * 4 * 16 * 16 * 8);
  });

  it('implicit output: the letters seen once, alphabetically', () => {
    expect(parseEinsum('ij,jk', [2, 2]).output).toEqual(['i', 'k']);
    expect(parseEinsum('ba', [2]).output).toEqual(['a', 'b']);
  });

  it('an ellipsis broadcasts from the right and leads an implicit output', () => {
    const e = parseEinsum('...ij,...jk->...ik', [4, 2]);
    expect(e.inputs).toEqual([['…1', '…0', 'i', 'j'], ['j', 'k']]);
    expect(einsumShape(e, [[2, 3, 5, 7], [7, 4]])).toEqual([2, 3, 5, 4]);
    expect(parseEinsum('...j,j', [3, 1]).output).toEqual(['…1', '…0']);
    // a broadcast axis of size 1 takes the other operand's size
    expect(einsumShape(parseEinsum('...i,...i->...i', [2, 2]), [[1, 3], [5, 3]])).toEqual([5, 3]);
  });

  it('a single operand only permutes or sums: shape follows, no MACs', () => {
    const e = parseEinsum('abc->cb', [3]);
    expect(einsumShape(e, [[2, 3, 4]])).toEqual([4, 3]);
    expect(einsumMacs(e, [[2, 3, 4]])).toBe(0);
  });

  it('refuses equations that do not fit the operands', () => {
    expect(() => parseEinsum('ij,jk->ik', [2])).toThrow(/2 operands/);
    expect(() => parseEinsum('ijk,jk->ik', [2, 2])).toThrow(/rank 2/);
    expect(() => parseEinsum('ij,jk->iz', [2, 2])).toThrow(/'z' is in no input/);
    expect(einsumShape(parseEinsum('ij,jk->ik', [2, 2]), [[2, 3], [4, 5]])).toBeUndefined();
  });
});

describe('Einsum attention as torch.einsum exports it (fixtures/exports/vit-einsum.onnx)', () => {
  const einsum = loadModel(fixture('exports/vit-einsum.onnx')).proto;

  it('shapes are known after every Einsum', () => {
    const index = new GraphIndex(einsum.graph!);
    const { shapes } = inferShapes(index, 2);
    for (const n of index.order) for (const o of n.output) expect(shapes.get(o), `${n.name} ${o}`).toBeDefined();
    const scores = index.order.find((n) => n.opType === 'Einsum')!;
    expect(shapes.get(scores.output[0])).toEqual([2, 4, 16, 16]);
  });

  it('counts the same parameters and MACs as the MatMul-attention export of the same weights', () => {
    const a = modelCost(einsum);
    const b = modelCost(loadModel(fixture('vit.onnx')).proto);
    expect(a.uncounted).toEqual([]);
    expect(a.params).toBe(b.params);
    expect(a.macs).toBe(b.macs);
    // both attention products per block: 4 heads x 16 x 16 tokens x 16 channels each
    expect(a.nodes.filter((n) => n.opType === 'Einsum').map((n) => n.macs)).toEqual(new Array(4).fill(4 * 16 * 16 * 16));
  });
});
