import * as fs from 'node:fs';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/schema.js';
import type { Dataset } from '../../src/data/dataset.js';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { modelCost } from '../../src/onnx/flops.js';
import { loadModel } from '../../src/onnx/model.js';
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type ModelProto,
} from '../../src/onnx/proto/onnx_pb.js';
import { makeFloatTensor } from '../../src/onnx/tensor.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { allocateSparsity } from '../../src/prune/sensitivity/allocateSparsity.js';
import { AnalysisOverBudget } from '../../src/prune/sensitivity/sensitivityCurves.js';
import { sensitivityPrune } from '../../src/prune/sensitivity/sensitivityPrune.js';
import { pruneModel } from '../../src/prune/pruneModel.js';
import { loadDataset } from '../../src/data/dataset.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { structuredGroups } from '../../src/prune/structured/structuredPrune.js';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { firstSamples } from '../support/slice.js';

const curve = (k: number) => [0.25, 0.5, 0.75, 0.9].map((ratio) => ({ ratio, increase: k * ratio * ratio }));

describe('allocateSparsity with a per-unit cost (loss per MAC saved)', () => {
  it('exponent 0 ignores the cost; exponent 1 moves pruning to the layer that saves more per unit', () => {
    const layers = [
      { size: 100, points: curve(1), unitCost: 10 },
      { size: 100, points: curve(1.5), unitCost: 100 },
    ];
    const plain = allocateSparsity(layers, 0.4);
    const perMac = allocateSparsity(layers, 0.4, { costExponent: 1 });
    for (const a of [plain, perMac]) expect(a.pruned[0] + a.pruned[1]).toBe(80);
    expect(plain.pruned[0]).toBeGreaterThan(plain.pruned[1]);
    expect(perMac.pruned[1]).toBeGreaterThan(perMac.pruned[0]);
    // 0.5 lies between
    const half = allocateSparsity(layers, 0.4, { costExponent: 0.5 });
    expect(half.pruned[1]).toBeGreaterThan(plain.pruned[1]);
    expect(half.pruned[1]).toBeLessThanOrEqual(perMac.pruned[1]);
  });

  it('flat curves tie: the costlier layer goes first, and the count stays exact', () => {
    const layers = [
      { size: 50, points: curve(0), unitCost: 5 },
      { size: 30, points: curve(0), unitCost: 7 },
      { size: 20, points: curve(0) },
    ];
    const a = allocateSparsity(layers, 0.33, { costExponent: 1 });
    expect(a.pruned.reduce((x, y) => x + y, 0)).toBe(33);
    expect(a.pruned).toEqual([5, 28, 0]);
    // without cost the tie goes by input order
    expect(allocateSparsity(layers, 0.33).pruned).toEqual([33, 0, 0]);
  });
});

/**
 * x[N,1,8,8] -> Conv A 1x1 (4 ch) -> Relu -> Conv B 3x3 pad 1 (4 ch) -> Relu -> Flatten -> Gemm (10 classes).
 * Only channel 0 of A and of B carries signal: the other channels have zero weights, so removing up to
 * three channels of either group leaves the logits bit-identical (integer inputs and weights: every sum
 * is exact in any order) and both loss curves are flat: a tie. A channel of B costs more MACs (its 3x3
 * fan-in plus 64 Gemm inputs x 10) than one of A (1x1 plus B's fan-in).
 */
function tiedModel(): ModelProto {
  const wa = new Float32Array(4);
  wa[0] = 1;
  const wb = new Float32Array(4 * 4 * 9);
  wb[4] = 2; // B out 0 <- A ch 0, kernel centre
  const wc = new Float32Array(10 * 256);
  for (let k = 0; k < 10; k++) for (let p = 0; p < 64; p++) wc[k * 256 + p] = ((k * 7 + p * 3) % 5) - 2; // B ch 0's 64 features
  const ints = (name: string, v: number[]) => create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INTS, ints: v.map(BigInt) });
  const int = (name: string, v: number) => create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(v) });
  const node = (name: string, opType: string, input: string[], output: string[], attribute: ReturnType<typeof int>[] = []) =>
    create(NodeProtoSchema, { name, opType, input, output, attribute });
  const vi = (name: string, dims: (number | string)[]) =>
    create(ValueInfoProtoSchema, {
      name,
      type: create(TypeProtoSchema, {
        value: { case: 'tensorType', value: { elemType: 1, shape: { dim: dims.map((d) => ({ value: typeof d === 'number' ? { case: 'dimValue' as const, value: BigInt(d) } : { case: 'dimParam' as const, value: d } })) } } as never },
      }),
    });
  return create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: 'prune-guard-test',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 13n })],
    graph: create(GraphProtoSchema, {
      name: 'tied',
      node: [
        node('convA', 'Conv', ['input', 'WA', 'BA'], ['a'], [ints('kernel_shape', [1, 1])]),
        node('reluA', 'Relu', ['a'], ['ar']),
        node('convB', 'Conv', ['ar', 'WB', 'BB'], ['b'], [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])]),
        node('reluB', 'Relu', ['b'], ['br']),
        node('flat', 'Flatten', ['br'], ['f'], [int('axis', 1)]),
        node('fc', 'Gemm', ['f', 'WC', 'BC'], ['logits'], [int('transB', 1)]),
      ],
      initializer: [
        makeFloatTensor('WA', [4, 1, 1, 1], wa),
        makeFloatTensor('BA', [4], new Float32Array(4)),
        makeFloatTensor('WB', [4, 4, 3, 3], wb),
        makeFloatTensor('BB', [4], new Float32Array(4)),
        makeFloatTensor('WC', [10, 256], wc),
        makeFloatTensor('BC', [10], new Float32Array(10)),
      ],
      input: [vi('input', ['N', 1, 8, 8])],
      output: [vi('logits', ['N', 10])],
    }),
  });
}

function calibSet(count: number): Dataset {
  const x = new Float32Array(count * 64);
  let s = 7;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s >>> 30; // 0..3
  }
  const labels = Int32Array.from({ length: count }, (_, i) => (i * 3) % 10);
  return { path: 'tied-calib', count, inputs: new Map([['input', { dtype: 'float32', dims: [count, 1, 8, 8], data: x }]]), labels };
}

describe('sensitivity-macs on a hand-built graph with tied losses', () => {
  it('removes the requested channels exactly, all from the group that saves more MACs per channel', async () => {
    const model = tiedModel();
    const calib = calibSet(64);
    const { groups } = structuredGroups(model, new Set());
    const prunable = groups.filter((g) => !g.skip && g.size > 1);
    expect(prunable.map((g) => g.size)).toEqual([4, 4]);
    const request = (perMac: boolean, maxMacs?: number) =>
      sensitivityPrune(model, {
        method: 'structured',
        sparsity: 3 / 8,
        calib,
        weights: prunableWeights(model, { exclude: [], keepFirstLayer: false, keepLastLayer: false }),
        protectedTensors: new Set(),
        config: { roundTo: 1, criterion: 'l1', latency: DEFAULT_CONFIG.latency },
        perMac,
        ...(maxMacs !== undefined ? { maxMacs } : {}),
      });
    // a limit the curve points' work exceeds stops before any group is measured
    const stopped = await request(true, 1).catch((e: unknown) => e);
    expect(stopped).toBeInstanceOf(AnalysisOverBudget);
    expect((stopped as AnalysisOverBudget).units).toBe(2);
    expect((stopped as AnalysisOverBudget).points).toBeGreaterThanOrEqual(2);
    const cost = await request(true, 1e15);
    const s = cost.sensitivity;
    expect(s.allocation).toBe('loss-per-mac');
    // both curves are flat: every point equals the dense loss
    for (const l of s.layers) for (const p of l.points) expect(p.calib_nll).toBe(s.dense.calib_nll);
    const macs = s.layers.map((l) => l.macs_per_unit!);
    expect(macs.every((m) => m > 0)).toBe(true);
    const costly = macs[0] > macs[1] ? 0 : 1;
    expect(macs[costly]).toBeGreaterThan(macs[1 - costly]);
    // exact count: 3 of 8 channels, all three from the costly group
    expect(s.layers.map((l) => Math.round(l.allocated * l.size))).toEqual(costly === 0 ? [3, 0] : [0, 3]);
    const plain = await request(false);
    expect(plain.sensitivity.allocation).toBe('loss');
    const removed = plain.sensitivity.layers.map((l) => Math.round(l.allocated * l.size));
    expect(removed[0] + removed[1]).toBe(3);
    // the tie goes by group order without cost; the test is only meaningful if that is the cheap group
    expect(removed[1 - costly]).toBe(3);
    // and the cost-aware model really runs fewer MACs
    expect(modelCost(cost.model).macs).toBeLessThan(modelCost(plain.model).macs);
  });
});

const FAST = ['--runs', '3', '--warmup', '1', '--batch-sizes', '1', '--quiet'];
const MLP = ['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--method', 'structured', '--sparsity', '0.3', '--recovery', 'none', ...FAST];

function scopeOf(out: string): { ledger: Ledger; metadata: string | undefined } {
  const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
  const saved = loadModel(ledger.models[0].pruned).proto;
  return { ledger, metadata: saved.metadataProps.find((p) => p.key === 'prune-guard.scope')?.value };
}

describe('sensitivity allocation on recorded widths', () => {
  it('snaps its kept counts to the multiples it is given, as a whole-model width check re-prunes it', async () => {
    const dense = loadModel(fixture('cnn-bn.onnx')).proto;
    const calib = loadDataset(firstSamples(fixture('fmnist-calib.npz'), 128), modelInputs(dense, 'cnn-bn.onnx'), { requireLabels: true });
    const config = { ...structuredClone(DEFAULT_CONFIG), method: 'structured' as const, scope: 'sensitivity-macs' as const, sparsity: 0.3 };
    const plain = await pruneModel(dense, config, { modelPath: 'cnn-bn.onnx', calib });
    const names = (plain.sensitivity?.layers ?? []).map((l) => l.name);
    expect(names.length).toBeGreaterThan(0);
    const widths = new Map(names.map((n) => [n, 16]));
    const whole = await pruneModel(dense, config, { modelPath: 'cnn-bn.onnx', calib, widths, wholeBlocks: true });
    expect(whole.allocation!.rounding).toBe('recorded');
    const convWidths = (m: ModelProto) => m.graph!.initializer.filter((t) => t.dims.length === 4).map((t) => Number(t.dims[0]));
    expect(convWidths(whole.model).every((w) => w % 16 === 0)).toBe(true);
  });

  it('rounding to whole blocks moves channels where the curves predict least loss, never onto the group they call most sensitive', async () => {
    // on the ResNet the stage-1 blocks cannot go below 16 in whole blocks, so their share must come from
    // elsewhere; ranked by weight magnitude it would come from the stage-2 residual group, whose curve is
    // the steepest
    const dense = loadModel(fixture('resnet.onnx')).proto;
    const calib = loadDataset(firstSamples(fixture('fmnist-calib.npz'), 128), modelInputs(dense, 'resnet.onnx'), { requireLabels: true });
    const config = { ...structuredClone(DEFAULT_CONFIG), method: 'structured' as const, scope: 'sensitivity-macs' as const, sparsity: 0.3 };
    const names = structuredGroups(dense, new Set()).groups.filter((g) => !g.skip && g.size > 1).map((g) => g.name);
    const whole = await pruneModel(dense, config, { modelPath: 'resnet.onnx', calib, widths: new Map(names.map((n) => [n, 16])), wholeBlocks: true });
    // the steepest curve among the groups whole blocks of 16 can cut at all
    const steepest = whole.sensitivity!.layers.filter((l) => l.size > 16).reduce((a, b) => (b.points[1].calib_nll > a.points[1].calib_nll ? b : a));
    // the premise: the allocation (before any rounding) leaves that group whole
    expect(steepest.allocated).toBe(0);
    const graph = whole.model.graph!;
    const producer = graph.node.find((n) => n.name === steepest.name.split(' + ')[0])!;
    expect(Number(graph.initializer.find((t) => t.name === producer.input[1])!.dims[0])).toBe(steepest.size);
  });
});

describe('sensitivity analysis reuse', () => {
  it('measures the curves once per model and calibration set: pruning again on other widths reuses them', async () => {
    const dense = loadModel(fixture('cnn-bn.onnx')).proto;
    const load = () => loadDataset(firstSamples(fixture('fmnist-calib.npz'), 64), modelInputs(dense, 'cnn-bn.onnx'), { requireLabels: true });
    const calib = load();
    let measured = 0;
    const request = (data: Dataset, widths?: ReadonlyMap<string, number>) =>
      sensitivityPrune(dense, {
        method: 'structured', sparsity: 0.3, calib: data, perMac: true, protectedTensors: new Set(),
        weights: prunableWeights(dense, { exclude: [], keepFirstLayer: false, keepLastLayer: false }),
        config: { roundTo: 0, criterion: 'l1', latency: DEFAULT_CONFIG.latency },
        onLayer: () => measured++,
        ...(widths ? { widths } : {}),
      });
    const first = await request(calib);
    const once = measured;
    expect(once).toBeGreaterThan(0);
    const again = await request(calib, new Map(first.sensitivity.layers.map((l) => [l.name, 16])));
    expect(measured).toBe(once);
    expect(again.sensitivity.layers).toEqual(first.sensitivity.layers);
    expect(again.widths?.groups.every((g) => g.multiple === 16)).toBe(true);
    // the same samples in another set are another analysis
    await request(load());
    expect(measured).toBeGreaterThan(once);
  });
});

describe('scope auto (the default) in the pipeline', () => {
  it('structured with a labelled --calib uses sensitivity-macs and records it in the ledger and the file', async () => {
    const out = tempDir();
    const r = await runCli([...MLP, '--calib', fixture('fmnist-calib.npz'), '--out', out]);
    // 0 pass/warn or 1 fail: budgets are not what this checks
    expect([0, 1]).toContain(r.code);
    const { ledger, metadata } = scopeOf(out);
    expect(validateLedger(ledger)).toEqual([]);
    const m = ledger.models[0];
    expect(m.scope).toBe('sensitivity-macs');
    expect(metadata).toBe('sensitivity-macs');
    expect(m.sensitivity!.allocation).toBe('loss-per-mac');
    expect(m.sensitivity!.layers.every((l) => l.macs_per_unit! > 0)).toBe(true);
    expect(m.steps[1].description).toMatch(/structured channel pruning \(l1, sensitivity-macs\) at 30.0% of channels/);
    // exactly the requested channel fraction, counted from the allocation
    const removed = m.sensitivity!.layers.reduce((n, l) => n + Math.round(l.allocated * l.size), 0);
    const total = m.sensitivity!.layers.reduce((n, l) => n + l.size, 0);
    expect(removed).toBe(Math.round(0.3 * total));
  }, 60_000);

  it('without calibration data it stays global, as before', async () => {
    const out = tempDir();
    const r = await runCli([...MLP, '--out', out]);
    // 0 pass/warn or 1 fail: budgets are not what this checks
    expect([0, 1]).toContain(r.code);
    const { ledger, metadata } = scopeOf(out);
    expect(ledger.models[0].scope).toBe('global');
    expect(metadata).toBe('global');
    expect(ledger.models[0].sensitivity).toBeUndefined();
  }, 60_000);

  it('falls back to global with a note when the curves would take more than the recovery work allowance; an explicit scope is measured anyway', async () => {
    // resnet: a dozen groups x 4 ratios, each a calibration pass of about 20 MMAC a sample, is far past 1 GMAC
    const out = tempDir();
    const tiny = ['--calib', fixture('fmnist-calib.npz'), '--recovery-work', '1'];
    // 200 test samples: what is checked is the scope decision, and evaluating the ResNet on all 2000 was most of the time
    const data = firstSamples(fixture('fmnist-test.npz'), 200);
    // --round-to 1 (no rounding still lets auto choose sensitivity-macs): timing the fast channel widths of
    // every ResNet layer kind on the run's empty probe cache took most of the rest, and is not what is checked
    const r = await runCli(['run', '--model', fixture('resnet.onnx'), '--data', data, '--method', 'structured', '--sparsity', '0.3', '--recovery', 'none', '--round-to', '1', ...FAST, ...tiny, '--out', out]);
    expect([0, 1]).toContain(r.code);
    const { ledger, metadata } = scopeOf(out);
    expect(validateLedger(ledger)).toEqual([]);
    const m = ledger.models[0];
    expect(m.scope).toBe('global');
    expect(metadata).toBe('global');
    expect(m.sensitivity).toBeUndefined();
    expect(m.notes?.[0]).toMatch(/^scope auto -> global: the sensitivity-macs analysis would take about \d+ GMAC for \d+ curve points over \d+ groups \(limit 1 GMAC, the recovery work allowance\)/);
    expect(m.steps[1].description).toMatch(/structured channel pruning \(l1, global\)/);
    const explicit = tempDir();
    const e = await runCli([...MLP, ...tiny, '--scope', 'sensitivity-macs', '--out', explicit]);
    expect([0, 1]).toContain(e.code);
    expect(scopeOf(explicit).ledger.models[0].scope).toBe('sensitivity-macs');
  }, 120_000);

  it('--scope sensitivity-macs is refused for unstructured with one line', async () => {
    const out = path.join(tempDir(), 'out');
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--scope', 'sensitivity-macs', '--out', out, ...FAST]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--scope sensitivity-macs: .*needs --method structured/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
