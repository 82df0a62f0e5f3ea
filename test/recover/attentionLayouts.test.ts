import { describe, expect, it } from 'vitest';
import { loadDataset, takeSamples } from '../../src/data/dataset.js';
import { loadModel } from '../../src/onnx/model.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { structuredPrune } from '../../src/prune/structured/structuredPrune.js';
import { DEFAULT_RECONSTRUCT, reconstruct } from '../../src/recover/reconstruct.js';
import { fixture } from '../support/fixtures.js';

const NONE = { exclude: [], keepFirstLayer: false, keepLastLayer: false };

/**
 * Recovery after structured pruning of the trained ViT exported with MatMul, Einsum and fused-QKV attention:
 * reconstruction (the stage `--recovery auto` starts with) refits the first block's attention
 * projections (a fused projection's output channels kept in three parts) against the dense output at
 * the kept channels, capturing through Einsum attention.
 */
describe.each(['vit.onnx', 'exports/vit-einsum.onnx', 'exports/vit-fusedqkv.onnx'])('reconstruction after structured pruning of %s', (file) => {
  it("refits the first block's attention projections and lowers their output error", async () => {
    const dense = loadModel(fixture(file)).proto;
    const all = loadDataset(fixture('fmnist-calib.npz'), modelInputs(dense, file), { requireLabels: true });
    const calib = takeSamples(all, Int32Array.from({ length: 32 }, (_, i) => i * 16));
    const r = await structuredPrune(dense, { sparsity: 0.3, scope: 'global', roundTo: 1, criterion: 'l1', protectedTensors: new Set() });
    const weights = prunableWeights(r.model, NONE).filter((w) => w.node.includes('blocks.0/attn')).map((w) => w.initializer);
    expect(weights.length).toBeGreaterThanOrEqual(2);
    const refit = await reconstruct(r.base, r.model, weights, calib, { ...DEFAULT_RECONSTRUCT, crossValidate: false, maxPatches: 512, kept: r.kept });
    expect(refit.skipped).toEqual([]);
    expect(refit.layers.length).toBe(weights.length);
    for (const l of refit.layers) expect(l.error_after, l.weight).toBeLessThanOrEqual(l.error_before);
  }, 60_000);
});
