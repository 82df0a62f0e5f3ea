import { describe, expect, it } from 'vitest';
import { modelCost } from '../../../src/onnx/flops.js';
import { loadModel } from '../../../src/onnx/model.js';
import { DataType } from '../../../src/onnx/tensor.js';
import { skipHint } from '../../../src/prune/structured/skip.js';
import { structuredGroups, structuredPrune } from '../../../src/prune/structured/structuredPrune.js';
import { fixture } from '../../support/fixtures.js';
import { asFloat16 } from '../../support/float16.js';
import { exactnessPerGroup } from './exactness.js';

/**
 * Attention as real exporters write it (fixtures/make_structured_fixtures.py): every layout must give one
 * group of whole heads per attention block, and removing heads must be exact at a batch size the analysis
 * never evaluated shapes at (constants written from shape arithmetic must not bake the batch in).
 */
interface Layout {
  file: string;
  what: string;
  /** also run onnx.checker: the layouts whose surgery writes constants in place of computed shape arithmetic or a -1 */
  check: boolean;
  /** prunable groups as [channels, channels per head] */
  prunable: [number, number][];
  skipped: string[];
}

const LAYOUTS: Layout[] = [
  { file: 'attn-torch-mha-op13.onnx', what: 'torch nn.MultiheadAttention, opset 13: packed in-projection cut by Slices computed from its shape, heads merged with the batch', check: true, prunable: [[32, 8]], skipped: ['graph-input', 'graph-output'] },
  { file: 'attn-torch-mha-op17.onnx', what: 'torch nn.MultiheadAttention, opset 17 (LayerNormalization op)', check: false, prunable: [[32, 8]], skipped: ['graph-input', 'graph-output'] },
  // on token ids: the residual stream starts at the embeddings and is one group, kept for LayerNorm
  { file: 'attn-hf-bert-op14.onnx', what: 'a Hugging Face BERT layer on token ids: view(size()[:-1] + (H, D)), permute, post-LayerNorm, FFN', check: false, prunable: [[32, 8], [64, 1]], skipped: ['graph-output', 'normalization'] },
  { file: 'attn-torch2-packed-op17.onnx', what: 'torch 2.x packed projection: Reshape (…, 3, E), Unsqueeze/Transpose/Squeeze, Gather per part, SDPA scaling', check: true, prunable: [[32, 8]], skipped: ['graph-input', 'graph-output'] },
  { file: 'attn-gpt2-split-op13.onnx', what: "GPT-2's fused c_attn cut by Split along the channels", check: false, prunable: [[32, 8]], skipped: ['graph-input', 'graph-output'] },
];

describe('attention layouts as exported: heads form one group and are removed exactly', () => {
  it.each(LAYOUTS)('$file ($what)', async ({ file, check, prunable, skipped }) => {
    const path = fixture(`structured/${file}`);
    const a = structuredGroups(loadModel(path).proto, new Set());
    expect(a.groups.filter((g) => !g.skip).map((g) => [g.size, g.block])).toEqual(prunable);
    // a residual added to the graph input, the classifier (the output), LayerNorm: each with its reason
    expect(a.groups.filter((g) => g.skip).map((g) => g.skip!.kind).sort()).toEqual(skipped);
    const checks = await exactnessPerGroup(path, { check });
    expect(checks).toHaveLength(prunable.length);
    for (const c of checks) {
      expect(c.diff, c.group).toBeLessThan(1e-5);
      expect(c.smaller, c.group).toBe(true);
    }
  }, 30_000);
});

describe("torchvision's VisionTransformer as exported for ViT-B/16 (2 blocks, opset 13)", () => {
  const path = fixture('structured/tv-vit-2block.onnx');

  it('prunes heads and FFN channels of every block; the rest is skipped for a reason with what to do', () => {
    // torchvision's export aliases equal LayerNorm parameters through Identity: untied first, as pruning does
    const a = structuredGroups(loadModel(path).proto, new Set());
    const ok = a.groups.filter((g) => !g.skip);
    expect(ok.map((g) => g.block).sort()).toEqual([1, 1, 8, 8]);
    const skipped = a.groups.filter((g) => g.skip);
    // the residual stream (patch embedding, class token, every out-projection and FFN output) is one
    // group, kept for LayerNorm; the classifier for the output
    expect(skipped.map((g) => g.skip!.kind).sort()).toEqual(['graph-output', 'normalization']);
    expect(skipped.find((g) => g.skip!.kind === 'normalization')!.name).toMatch(/^\/conv_proj\/Conv \+ .* \+ \d+ more$/);
    for (const g of skipped) expect(skipHint(g.skip!).length).toBeGreaterThan(10);
  });

  it("the first block's heads and FFN channels are removed exactly", async () => {
    const checks = await exactnessPerGroup(path, { check: true, maxGroups: 2 });
    expect(checks).toHaveLength(2);
    for (const c of checks) expect(c.diff, c.group).toBeLessThan(1e-5);
  }, 30_000);
});

describe('the Einsum and fused-QKV exports of the trained ViT (fixtures/exports)', () => {
  it.each(['vit-einsum.onnx', 'vit-fusedqkv.onnx'])('%s: structured at 0.3 removes heads and FFN channels, parameters at most 0.8x dense, exactly', async (file) => {
    const path = fixture(`exports/${file}`);
    const { proto } = loadModel(path);
    const r = await structuredPrune(proto, { sparsity: 0.3, scope: 'global', roundTo: 1, criterion: 'l1', protectedTensors: new Set() });
    const heads = r.groups.filter((g) => g.block === 16);
    const ffn = r.groups.filter((g) => !g.skip && g.block === 1);
    expect(heads).toHaveLength(2);
    expect(ffn).toHaveLength(2);
    expect(heads.some((g) => g.kept < g.size)).toBe(true);
    expect(ffn.some((g) => g.kept < g.size)).toBe(true);
    expect(modelCost(r.model).params / modelCost(proto).params).toBeLessThanOrEqual(0.8);
    // the first block's heads (its FFN and the second block are built as in vit.onnx, checked there)
    const checks = await exactnessPerGroup(path, { check: true, maxGroups: 1 });
    expect(checks.map((c) => c.group)).toEqual([expect.stringMatching(/attn\/(q|qkv)\/MatMul/)]);
    for (const c of checks) expect(c.diff, c.group).toBeLessThan(1e-5);
  }, 30_000);
});


describe('float16 weights and I/O (the Einsum ViT cast to float16)', () => {
  it('structured at 0.3 removes heads and FFN channels, writes the weights back in float16, and removing a group matches zeroing it', async () => {
    const proto = asFloat16(loadModel(fixture('exports/vit-einsum.onnx')).proto);
    const r = await structuredPrune(proto, { sparsity: 0.3, scope: 'global', roundTo: 1, criterion: 'l1', protectedTensors: new Set() });
    const heads = r.groups.filter((g) => g.block === 16);
    expect(heads).toHaveLength(2);
    expect(heads.some((g) => g.kept < g.size)).toBe(true);
    expect(r.groups.filter((g) => !g.skip && g.block === 1 && g.kept < g.size).length).toBeGreaterThan(0);
    expect(modelCost(r.model).params / modelCost(proto).params).toBeLessThanOrEqual(0.8);
    const floats = r.model.graph!.initializer.filter((t) => t.dataType === DataType.FLOAT16 || t.dataType === DataType.FLOAT);
    expect(floats.every((t) => t.dataType === DataType.FLOAT16)).toBe(true);
    // float16 sums of the same terms in another order: within a few units of float16 rounding
    const checks = await exactnessPerGroup(fixture('exports/vit-einsum.onnx'), { maxGroups: 1, as: asFloat16 });
    expect(checks).toHaveLength(1);
    for (const c of checks) expect(c.diff, c.group).toBeLessThan(1e-2);
  }, 30_000);
});
