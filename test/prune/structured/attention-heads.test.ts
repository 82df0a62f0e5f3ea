import { describe, expect, it } from 'vitest';
import { loadModel } from '../../../src/onnx/model.js';
import { GraphIndex } from '../../../src/onnx/graph.js';
import { tensorToInts } from '../../../src/onnx/tensor.js';
import { structuredPrune } from '../../../src/prune/structured/structuredPrune.js';
import { fixture } from '../../support/fixtures.js';
import { topologyCases } from './topology.js';

const tiny = fixture('structured/vit-tiny.onnx');

describe('multi-head attention (vit-tiny: 2 blocks, 4 heads of 16, MLP 128): whole heads and MLP hidden units', () => {
  topologyCases(tiny, {
    prunable: 4,
    groups: ['/blocks/blocks.0/attn/q/MatMul + /blocks/blocks.0/attn/k/MatMul + /blocks/blocks.0/attn/v/MatMul', '/blocks/blocks.1/fc1/MatMul'],
    // the residual stream is normalised by LayerNorm over its channels: never pruned
    skipped: ["reaches graph output 'logits'"],
  });

  it('prunes heads whole and rewrites the head count of every Reshape', async () => {
    const { proto } = loadModel(tiny);
    const r = await structuredPrune(proto, { sparsity: 0.5, scope: 'layer', roundTo: 1, criterion: 'l2', protectedTensors: new Set() });
    const heads = r.groups.filter((g) => g.block === 16);
    expect(heads.length).toBe(2);
    for (const g of heads) expect(g.kept).toBe(32);
    const index = new GraphIndex(r.model.graph!);
    const targets = r.model.graph!.node.filter((n) => n.opType === 'Reshape' && n.name.includes('/attn/')).map((n) => tensorToInts(index.constant(n.input[1])!));
    expect(targets.filter((t) => t.length === 4).every((t) => t[2] === 2 && t[3] === 16)).toBe(true);
    // the merge back to [B, T, -1] needs no rewrite
    expect(targets.filter((t) => t.length === 3).every((t) => t[2] === -1)).toBe(true);
  });
});

const vit = fixture('vit.onnx');
describe('fixtures/vit.onnx', () => {
  it('finds prunable head or MLP groups and exactness holds for each', async () => {
    const { exactnessPerGroup } = await import('./exactness.js');
    const checks = await exactnessPerGroup(vit, { check: true });
    expect(checks.length).toBeGreaterThan(0);
    for (const c of checks) expect(c.diff, c.group).toBeLessThan(1e-4);
  }, 120_000);
});

describe('dynamic-batch attention export (head counts inside Concat(Unsqueeze(constant)) targets)', () => {
  topologyCases(fixture('structured/vit-tiny-dynamic.onnx'), {
    prunable: 4,
    groups: ['/blocks/blocks.1/attn/q/MatMul + /blocks/blocks.1/attn/k/MatMul + /blocks/blocks.1/attn/v/MatMul'],
  });
});
