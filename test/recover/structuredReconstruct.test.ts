import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, takeSamples, type Dataset } from '../../src/data/dataset.js';
import type { Ledger } from '../../src/ledger/types.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { loadModel } from '../../src/onnx/model.js';
import type { ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { tensorDims, tensorToFloat32 } from '../../src/onnx/tensor.js';
import { takeAlongAxis } from '../../src/prune/structured/surgery.js';
import { structuredPrune, type StructuredResult } from '../../src/prune/structured/structuredPrune.js';
import { DEFAULT_RECONSTRUCT, reconstruct } from '../../src/recover/reconstruct.js';
import { captureActivations, sessionFromModel } from '../../src/onnx/runtime/session.js';
import { withExtraOutputs } from '../../src/onnx/subgraph.js';
import { layerSkipText } from '../../src/recover/refusals.js';
import { runCli } from '../support/cli.js';
import { fixture, realWorldDir, tempDir } from '../support/fixtures.js';
import { calibScore } from '../../src/recover/calibScore.js';
import { onnxCheckAll } from '../support/onnxChecker.js';

const OPTS = { sparsity: 0.3, scope: 'global' as const, roundTo: 1, criterion: 'l1' as const, protectedTensors: new Set<string>() };

function slice(model: ModelProto, name: string, axes: ReadonlyMap<number, Int32Array>): { values: Float32Array; dims: number[] } {
  const t = new GraphIndex(model.graph!).initializers.get(name)!;
  let values = tensorToFloat32(t);
  const dims = tensorDims(t);
  for (const [axis, idx] of axes) {
    values = takeAlongAxis(values, dims, axis, [...idx]);
    dims[axis] = idx.length;
  }
  return { values, dims };
}

describe.each(['cnn-bn.onnx', 'resnet.onnx', 'dsconv-concat.onnx', 'vit.onnx'])('kept-channel map of %s', (name) => {
  let r: StructuredResult;
  beforeAll(async () => {
    r = await structuredPrune(loadModel(fixture(name)).proto, OPTS);
  });

  it('slicing the dense tensor by the map gives the pruned tensor exactly, and unlisted tensors are unchanged', () => {
    expect(r.kept.size).toBeGreaterThan(0);
    const pruned = new GraphIndex(r.model.graph!).initializers;
    for (const t of r.base.graph!.initializer) {
      const p = pruned.get(t.name);
      if (!p) continue;
      const want = slice(r.base, t.name, r.kept.get(t.name) ?? new Map());
      expect(tensorDims(p), t.name).toEqual(want.dims);
      expect(tensorToFloat32(p)).toEqual(want.values);
    }
    // every map entry is strictly increasing and names a real axis of a pruned tensor
    for (const [tensor, axes] of r.kept) {
      expect(pruned.has(tensor), tensor).toBe(true);
      for (const idx of axes.values()) for (let i = 1; i < idx.length; i++) expect(idx[i]).toBeGreaterThan(idx[i - 1]);
    }
  });
});

describe('reconstruct refits a layer whose output channels were removed', () => {
  const WEIGHT = 'features.2.0.weight';
  let r: StructuredResult;
  let calib: Dataset;
  let conv: string;
  let kept: Int32Array;

  /** relative error of the pruned Conv output against the dense Conv output at the kept channels */
  async function layerError(model: ModelProto, dense: Float32Array, dims: number[]): Promise<number> {
    const s = await sessionFromModel(withExtraOutputs(model, [conv]));
    const y = (await captureActivations(s, calib, [conv])).get(conv)!;
    await s.release();
    const [n, c, h, w] = dims;
    const hw = h * w;
    let err = 0;
    let norm = 0;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < kept.length; k++) {
        for (let j = 0; j < hw; j++) {
          const d = dense[(i * c + kept[k]) * hw + j];
          err += (y.data[(i * kept.length + k) * hw + j] - d) ** 2;
          norm += d * d;
        }
      }
    }
    return Math.sqrt(err / norm);
  }

  beforeAll(async () => {
    const dense = loadModel(fixture('cnn-bn.onnx')).proto;
    calib = loadDataset(fixture('fmnist-calib.npz'), modelInputs(dense, 'cnn-bn'), { requireLabels: true });
    r = await structuredPrune(dense, OPTS);
    conv = new GraphIndex(r.model.graph!).consumersOf(WEIGHT)[0].output[0];
    kept = r.kept.get(WEIGHT)!.get(0)!;
  }, 60_000);

  it('lowers its output error against the dense output at the kept channels', async () => {
    // both its input channels and its output channels were cut
    expect(kept.length).toBeLessThan(32);
    expect(r.kept.get(WEIGHT)!.get(1)!.length).toBeLessThan(16);
    const s = await sessionFromModel(withExtraOutputs(r.base, [conv]));
    const y = (await captureActivations(s, calib, [conv])).get(conv)!;
    await s.release();
    const refit = await reconstruct(r.base, r.model, [WEIGHT, 'fc.weight'], calib, { ...DEFAULT_RECONSTRUCT, reluAware: false, maxPatches: 4096, kept: r.kept });
    expect(refit.skipped).toEqual([]);
    const before = await layerError(r.model, y.data, y.dims);
    const after = await layerError(refit.model, y.data, y.dims);
    expect(before).toBeGreaterThan(0.1);
    expect(after).toBeLessThan(before * 0.6);
    const layer = refit.layers.find((l) => l.weight === WEIGHT)!;
    expect(layer.error_after).toBeLessThan(layer.error_before);
  }, 60_000);

  it('without the map the layer is skipped and says why', async () => {
    const refit = await reconstruct(r.base, r.model, [WEIGHT], calib, { ...DEFAULT_RECONSTRUCT, crossValidate: false, maxPatches: 1024 });
    expect(refit.layers).toEqual([]);
    expect(refit.skipped[0].reason.kind).toBe('unpaired');
    expect(layerSkipText(refit.skipped[0].reason)).toMatch(/did not record which were kept/);
  }, 60_000);
});

describe('prune-guard run --method structured --recovery reconstruct', () => {
  const out = tempDir();
  let ledger: Ledger;
  // global without width rounding: its prune step loses most of top-1, so the refit has something to
  // recover (auto would pick sensitivity-macs; measured widths would keep whole 16-channel blocks)
  beforeAll(async () => {
    const r = await runCli(['run', '--model', fixture('cnn-bn.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--method', 'structured', '--sparsity', '0.3', '--scope', 'global', '--round-to', '1', '--recovery', 'reconstruct', '--out', out, '--quiet', '--warmup', '1', '--runs', '5', '--batch-sizes', '1']);
    expect(r.stderr).not.toMatch(/error/i);
    ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
  }, 120_000);

  it('refits the structured model: calibration and evaluation accuracy well above --recovery none, every file valid', () => {
    const steps = ledger.models[0].steps;
    const rec = steps.find((s) => s.name === 'recover:reconstruct')!;
    // the prune step is what --recovery none ships
    expect(rec.recovery!.calib_accuracy_after!).toBeGreaterThan(rec.recovery!.calib_accuracy_before! + 0.3);
    expect(rec.accuracy!).toBeGreaterThan(steps[1].accuracy! + 0.3);
    expect(rec.accuracy!).toBeGreaterThan(steps[0].accuracy! - 0.06);
    onnxCheckAll(steps.slice(1).map((s) => s.artifact));
  });
});

describe('a wide structured classifier fit on few samples', () => {
  it('is cross-validated from its patches and generalizes better than the fixed damp, whether its columns were cut or not (real-world CIFAR-10 CNN, 30% layer scope)', async () => {
    // its Gemm reads 1,600 columns from 250 samples: far too few to fit with the fixed damp
    const dir = realWorldDir('cifar10-cnn');
    const dense = loadModel(path.join(dir, 'model.onnx')).proto;
    const calib = loadDataset(path.join(dir, 'calib.npz'), modelInputs(dense, 'model.onnx'), { requireLabels: true });
    const fit = takeSamples(calib, Array.from({ length: 250 }, (_, i) => 2 * i));
    const held = takeSamples(calib, Array.from({ length: 250 }, (_, i) => 2 * i + 1));
    const r = await structuredPrune(dense, { ...OPTS, scope: 'layer' });
    const weights = [...r.kept.keys()].filter((n) => r.model.graph!.initializer.some((t) => t.name === n && t.dims.length >= 2));
    const refit = async (crossValidate: boolean) => reconstruct(r.base, r.model, weights, fit, { ...DEFAULT_RECONSTRUCT, crossValidate, kept: r.kept });
    const [fixed, validated] = [await refit(false), await refit(true)];
    const gemm = (x: Awaited<ReturnType<typeof refit>>) => x.layers.find((l) => l.node === 'Gemm_11')!;
    expect(gemm(fixed).damp).toBe(DEFAULT_RECONSTRUCT.damp);
    expect(gemm(validated).damp).toBeGreaterThan(DEFAULT_RECONSTRUCT.damp);
    const score = async (m: ModelProto) => calibScore(m, held, 1);
    const [a, b] = [await score(fixed.model), await score(validated.model)];
    expect(b.nll).toBeLessThan(a.nll);
    // the last conv uncut: the classifier keeps its 2,400 columns, solved in blocks, and is cross-validated too
    const lastConv = dense.graph!.node.filter((n) => n.opType === 'Conv').at(-1)!.input[1];
    const kept = await structuredPrune(dense, { ...OPTS, scope: 'layer', protectedTensors: new Set([lastConv]) });
    const classifier = dense.graph!.node.find((n) => n.opType === 'Gemm')!.input[1];
    const aligned = await reconstruct(kept.base, kept.model, [classifier], fit, { ...DEFAULT_RECONSTRUCT, kept: kept.kept });
    expect(gemm(aligned).damp).toBeGreaterThan(DEFAULT_RECONSTRUCT.damp);
  });
});
