import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../src/data/dataset.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { AttributeProto_AttributeType, AttributeProtoSchema, GraphProtoSchema, ModelProtoSchema, NodeProtoSchema, OperatorSetIdProtoSchema, TypeProtoSchema, ValueInfoProtoSchema, type ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { makeFloatTensor, tensorToFloat32 } from '../../src/onnx/tensor.js';
import { reestimateBatchNorm } from '../../src/recover/batchNorm.js';
import { captureSamplesThatFit, columnBlocks, distillUnfit, refitBytes } from '../../src/recover/bounds.js';
import { ACTIVATION_HIGH_WATER, boundedBatch, largestActivationBytes } from '../../src/onnx/runtime/activationBudget.js';
import { linearLayer } from '../../src/recover/layers.js';
import { layerPatches, PatchSampler } from '../../src/recover/patches.js';
import { DEFAULT_RECONSTRUCT, reconstruct } from '../../src/recover/reconstruct.js';
import { captureActivations, sessionFromModel, streamActivations } from '../../src/onnx/runtime/session.js';
import { graphUpTo, withExtraOutputs } from '../../src/onnx/subgraph.js';
import { batchNormBoundText, distillUnfitText, layerSkipText } from '../../src/recover/refusals.js';
import { WorkMeter, type SafetyStop } from '../../src/recover/work.js';
import { seededWeights } from '../support/buildModel.js';

function vi(name: string, dims: (number | string)[]) {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: 'tensorType', value: { elemType: 1, shape: { dim: dims.map((d) => ({ value: typeof d === 'number' ? { case: 'dimValue' as const, value: BigInt(d) } : { case: 'dimParam' as const, value: d } })) } } as never } }),
  });
}

const ints = (name: string, v: number[]) => create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INTS, ints: v.map(BigInt) });
const int = (name: string, v: number) => create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(v) });

/** x [N,2,6,6] -> Conv(4, 3x3, pad 1) -> BatchNormalization -> Relu -> Conv(4, 3x3) -> Flatten -> Gemm(3) -> y */
function smallCnn(scale = 1): ModelProto {
  const node = (opType: string, input: string[], output: string[], attribute = [] as ReturnType<typeof int>[]) => create(NodeProtoSchema, { name: output[0], opType, input, output, attribute });
  return create(ModelProtoSchema, {
    irVersion: 8n,
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 13n })],
    graph: create(GraphProtoSchema, {
      name: 'small-cnn',
      node: [
        node('Conv', ['x', 'w1', 'b1'], ['c1'], [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])]),
        node('BatchNormalization', ['c1', 'g', 'beta', 'mean', 'var'], ['n1']),
        node('Relu', ['n1'], ['r1']),
        node('Conv', ['r1', 'w2', 'b2'], ['c2'], [ints('kernel_shape', [3, 3])]),
        node('Flatten', ['c2'], ['f']),
        node('Gemm', ['f', 'w3', 'b3'], ['y'], [int('transB', 1)]),
      ],
      initializer: [
        makeFloatTensor('w1', [4, 2, 3, 3], seededWeights(72, 1).map((v) => v * scale)),
        makeFloatTensor('b1', [4], seededWeights(4, 2)),
        makeFloatTensor('g', [4], Float32Array.of(1, 1.5, 0.5, 2)),
        makeFloatTensor('beta', [4], Float32Array.of(0, 0.1, -0.1, 0.2)),
        makeFloatTensor('mean', [4], Float32Array.of(0, 0, 0, 0)),
        makeFloatTensor('var', [4], Float32Array.of(1, 1, 1, 1)),
        makeFloatTensor('w2', [4, 4, 3, 3], seededWeights(144, 3)),
        makeFloatTensor('b2', [4], seededWeights(4, 4)),
        makeFloatTensor('w3', [3, 64], seededWeights(192, 5)),
        makeFloatTensor('b3', [3], seededWeights(3, 6)),
      ],
      input: [vi('x', ['N', 2, 6, 6])],
      output: [vi('y', ['N', 3])],
    }),
  });
}

function calibSet(n: number): Dataset {
  return { path: 'calib', count: n, inputs: new Map([['x', { dtype: 'float32', dims: [n, 2, 6, 6], data: seededWeights(n * 72, 11) }]]), labels: null };
}

/** The small CNN with every other weight of w2 and w3 zeroed (an unstructured prune). */
function prunedCnn(): ModelProto {
  const m = smallCnn();
  for (const t of m.graph!.initializer) {
    if (t.name !== 'w2' && t.name !== 'w3') continue;
    const v = tensorToFloat32(t).map((x, i) => (i % 2 ? 0 : x));
    Object.assign(t, makeFloatTensor(t.name, t.dims.map(Number), v));
  }
  return m;
}

describe('activation batch bound', () => {
  it('cuts the batch so the arena high-water of the largest activations fits, never below one', () => {
    const m = smallCnn();
    // largest per sample: c1 / n1 / r1 = 4 x 6 x 6 floats
    expect(largestActivationBytes(m)).toBe(4 * 36 * 4);
    expect(boundedBatch(m, 256)).toBe(256);
    expect(boundedBatch(m, 256, ACTIVATION_HIGH_WATER * 576 * 10)).toBe(10);
    expect(boundedBatch(m, 256, ACTIVATION_HIGH_WATER * 576 * 10 - 1)).toBe(9);
    expect(boundedBatch(m, 256, 1)).toBe(1);
  });
});

describe('graphUpTo', () => {
  it('computes the same tensor as the full model and drops the nodes and initializers after it', async () => {
    const m = smallCnn();
    const cut = graphUpTo(m, ['r1']);
    expect(cut.graph!.node.map((n) => n.opType)).toEqual(['Conv', 'BatchNormalization', 'Relu']);
    expect(cut.graph!.initializer.map((t) => t.name).sort()).toEqual(['b1', 'beta', 'g', 'mean', 'var', 'w1']);
    const data = calibSet(5);
    const a = await sessionFromModel(cut);
    const b = await sessionFromModel(withExtraOutputs(m, ['r1']));
    const ra = (await captureActivations(a, data, ['r1'])).get('r1')!;
    const rb = (await captureActivations(b, data, ['r1'])).get('r1')!;
    expect(ra.dims).toEqual(rb.dims);
    expect(Array.from(ra.data)).toEqual(Array.from(rb.data));
    await a.release();
    await b.release();
  });
});

describe('sessions of big models', () => {
  it('go to onnxruntime through a temp file that is removed once the session is made, with the same outputs', async () => {
    const m = smallCnn();
    const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-session-test-'));
    const before = process.env.RUNNER_TEMP;
    process.env.RUNNER_TEMP = temp;
    try {
      const data = calibSet(5);
      const inMemory = await sessionFromModel(m, 0, { lean: true });
      const viaFile = await sessionFromModel(m, 0, { lean: true, fileAboveBytes: 0 });
      expect(fs.readdirSync(temp)).toEqual([]);
      const a = (await captureActivations(inMemory, data, ['y'])).get('y')!;
      const b = (await captureActivations(viaFile, data, ['y'])).get('y')!;
      expect(Array.from(b.data)).toEqual(Array.from(a.data));
      await inMemory.release();
      await viaFile.release();
    } finally {
      if (before === undefined) delete process.env.RUNNER_TEMP;
      else process.env.RUNNER_TEMP = before;
      fs.rmSync(temp, { recursive: true, force: true });
    }
  });
});

describe('streamed patches', () => {
  it('PatchSampler fed in uneven batches picks exactly the patches layerPatches picks from the whole activation', async () => {
    const m = smallCnn();
    const layer = linearLayer(new GraphIndex(m.graph!), 'w2');
    if (typeof layer === 'string') throw new Error(layer);
    const data = calibSet(7);
    const session = await sessionFromModel(graphUpTo(m, ['r1']));
    const whole = (await captureActivations(session, data, ['r1'])).get('r1')!;
    const expected = layerPatches(layer, whole, true, 50);
    let sampler: PatchSampler | undefined;
    let batches = 0;
    await streamActivations([{ session, fetch: ['r1'] }], data, 3, ([acts], first, count) => {
      const a = acts.get('r1')!;
      sampler ??= new PatchSampler(layer, a.dims.slice(1), data.count, true, 50);
      sampler.add(a.data, first, count);
      batches++;
    });
    await session.release();
    expect(batches).toBe(3);
    const got = sampler!.result();
    expect(got.patches).toBe(expected.patches);
    expect(Array.from(got.perGroup[0])).toEqual(Array.from(expected.perGroup[0]));
  });
});

describe('reconstruction bounds', () => {
  it('refits the layers when the bounds allow it', async () => {
    const r = await reconstruct(smallCnn(), prunedCnn(), ['w2', 'w3'], calibSet(40), { ...DEFAULT_RECONSTRUCT, maxPatches: 200 });
    expect(r.layers.map((l) => l.weight)).toEqual(['w2', 'w3']);
    expect(r.skipped).toEqual([]);
  });

  it('refits a layer whose bias is computed in the graph (an Identity of a shared initializer, as torch exports equal biases) and leaves that bias alone', async () => {
    const viaIdentity = (m: ModelProto) => {
      const g = m.graph!;
      const conv2 = g.node.findIndex((n) => n.name === 'c2');
      g.node[conv2].input[2] = 'b2_shared';
      g.node.splice(conv2, 0, create(NodeProtoSchema, { name: 'b2_identity', opType: 'Identity', input: ['b2'], output: ['b2_shared'] }));
      return m;
    };
    const pruned = viaIdentity(prunedCnn());
    const r = await reconstruct(viaIdentity(smallCnn()), pruned, ['w2', 'w3'], calibSet(40), { ...DEFAULT_RECONSTRUCT, maxPatches: 200 });
    expect(r.skipped).toEqual([]);
    expect(r.layers.map((l) => l.weight)).toEqual(['w2', 'w3']);
    expect(r.layers[0].error_after).toBeLessThan(r.layers[0].error_before);
    const b2 = (m: ModelProto) => Array.from(tensorToFloat32(m.graph!.initializer.find((t) => t.name === 'b2')!));
    expect(b2(r.model)).toEqual(b2(pruned));
  });

  it('skips a layer whose refit needs more than the memory bound, says how much, and leaves its weights as pruned', async () => {
    const pruned = prunedCnn();
    // w2 has 36 + 1 columns and w3 64 + 1: a bound between their needs keeps w2 and skips w3
    const bound = (refitBytes(200, 37, 37, 37) + refitBytes(200, 65, 65, 65)) / 2;
    const r = await reconstruct(smallCnn(), pruned, ['w2', 'w3'], calibSet(40), { ...DEFAULT_RECONSTRUCT, maxPatches: 200, maxRefitBytes: bound });
    expect(r.layers.map((l) => l.weight)).toEqual(['w2']);
    expect(r.skipped).toHaveLength(1);
    expect(r.skipped[0].weight).toBe('w3');
    expect(r.skipped[0].reason.kind).toBe('memory');
    expect(layerSkipText(r.skipped[0].reason)).toMatch(/needs about \d+ MB \(Gram matrices of 65 x 65 and 65 x 65 columns\), over the \d+ MB refit bound/);
    const before = tensorToFloat32(pruned.graph!.initializer.find((t) => t.name === 'w3')!);
    const after = tensorToFloat32(r.model.graph!.initializer.find((t) => t.name === 'w3')!);
    expect(Array.from(after)).toEqual(Array.from(before));
  });

  it('names the memory bound for a layer that could never be refit even when the safety stop has already fired', async () => {
    const bound = (refitBytes(200, 37, 37, 37) + refitBytes(200, 65, 65, 65)) / 2;
    const r = await reconstruct(smallCnn(), prunedCnn(), ['w2', 'w3'], calibSet(40), { ...DEFAULT_RECONSTRUCT, maxPatches: 200, maxRefitBytes: bound, stop: FIRED });
    expect(r.layers).toEqual([]);
    expect(r.skipped.map((s) => [s.weight, s.reason.kind === 'memory' ? 'memory' : layerSkipText(s.reason)])).toEqual([['w2', 'cut short: the recovery-time-budget safety stop had fired'], ['w3', 'memory']]);
    expect(r.skipped.map((s) => s.reason.kind)).toEqual(['time', 'memory']);
    expect(r.cutShort).toBe(true);
  });

  it('skips layers whose estimated capture and solve work exceed what is left of the allowance, without starting them', async () => {
    const r = await reconstruct(smallCnn(), prunedCnn(), ['w2', 'w3'], calibSet(40), { ...DEFAULT_RECONSTRUCT, maxPatches: 200, work: new WorkMeter(1000) });
    expect(r.layers).toEqual([]);
    expect(r.skipped.map((s) => s.weight)).toEqual(['w2', 'w3']);
    for (const s of r.skipped) expect(s.reason.kind).toBe('work');
    for (const s of r.skipped) expect(layerSkipText(s.reason)).toMatch(/^estimated [\d.e-]+ GMAC of work \(capturing its input on 40 samples from both models, then the solve\), more than the [\d.e-]+ GMAC left of the recovery work allowance, even on fewer samples$/);
    expect(r.subsampled).toEqual([]);
    expect(r.cutShort).toBe(false);
  });
});

/** A safety stop that has already fired. */
const FIRED: SafetyStop = { limitSeconds: 1, passed: () => true, elapsedSeconds: () => 2 };

/** A work meter that records each charge. */
class RecordingMeter extends WorkMeter {
  readonly charges: number[] = [];
  override charge(macs: number): void {
    this.charges.push(macs);
    super.charge(macs);
  }
}

describe('capture on fewer samples when all do not fit the work left', () => {
  const base = { count: 512, positionsPerSample: 197, maxPatches: 8192, spread: 4, solveWork: 10 };
  it('takes every sample when capture and solve fit', () => {
    expect(captureSamplesThatFit({ ...base, captureWork: 100, workLeft: 110 })).toBe(512);
  });
  it('takes the most samples that fit, but never fewer than spread x maxPatches patches need', () => {
    // 60 units of room at 100 per 512 samples: 307 samples; the floor is ceil(4 x 8192 / 197) = 167
    expect(captureSamplesThatFit({ ...base, captureWork: 100, workLeft: 70 })).toBe(307);
    expect(captureSamplesThatFit({ ...base, captureWork: 100, workLeft: 10 + (100 * 167) / 512 })).toBe(167);
    expect(captureSamplesThatFit({ ...base, captureWork: 100, workLeft: 40 })).toBeNull();
  });
  it('never subsamples a layer with one position per sample below the spread floor (a classifier Gemm needs every sample)', () => {
    expect(captureSamplesThatFit({ ...base, positionsPerSample: 1, captureWork: 100, workLeft: 100 })).toBeNull();
  });

  it('refits a layer from evenly spaced samples when the whole set would not fit, and leaves a later layer that does not fit with its reason', async () => {
    // w2's capture runs conv1 (2592 MACs a sample) in both models: 5184 a sample, 207360 on all 40
    const full = new RecordingMeter(Infinity);
    await reconstruct(smallCnn(), prunedCnn(), ['w2', 'w3'], calibSet(40), { ...DEFAULT_RECONSTRUCT, maxPatches: 20, work: full });
    const w2Solve = full.charges[0] - 5184 * 40;
    expect(w2Solve).toBeGreaterThan(0);
    // room for w2's solve and half its capture, nothing for w3
    const half = new RecordingMeter(w2Solve + 5184 * 20);
    const r = await reconstruct(smallCnn(), prunedCnn(), ['w2', 'w3'], calibSet(40), { ...DEFAULT_RECONSTRUCT, maxPatches: 20, work: half });
    expect(r.layers.map((l) => l.weight)).toEqual(['w2']);
    expect(r.subsampled).toEqual([{ weight: 'w2', samples: 20 }]);
    expect(r.skipped.map((s) => [s.weight, s.reason.kind])).toEqual([['w3', 'work']]);
    expect(half.charges).toEqual([w2Solve + 5184 * 20]);
    const w2 = r.layers[0];
    expect(w2.error_after).toBeLessThan(w2.error_before);
  });
});

describe('BatchNorm re-estimation bounds', () => {
  const bnStats = (m: ModelProto) => ['mean', 'var'].map((n) => Array.from(tensorToFloat32(m.graph!.initializer.find((t) => t.name === n)!)));

  it('with time for one pass per node, re-estimates node by node, and the one-pass fallback gives the same statistics for a single node', async () => {
    const data = calibSet(20);
    const seq = await reestimateBatchNorm(smallCnn(), data, 0, {});
    expect(seq.nodes).toHaveLength(1);
    expect(seq.bound).toBeUndefined();
    // a pass is 5088 MACs x 20 samples; 1000 MACs left: neither the node's capture nor one pass fits
    const none = await reestimateBatchNorm(smallCnn(), data, 0, { work: new WorkMeter(1000) });
    expect(none.nodes).toEqual([]);
    expect(none.bound?.kind).toBe('work');
    expect(batchNormBoundText(none.bound!)).toBe('one pass over the calibration set is about 0.00010 GMAC, more than the 0.0000010 GMAC left of the recovery work allowance');
    expect(bnStats(none.model)).toEqual([[0, 0, 0, 0], [1, 1, 1, 1]]);
  });

  it('falls back to one pass for all nodes when one pass per node does not fit, and says so', async () => {
    // two BatchNormalization nodes in a row: sequential costs two passes of the part before each
    const m = smallCnn();
    const g = m.graph!;
    g.node.splice(2, 0, create(NodeProtoSchema, { name: 'n2', opType: 'BatchNormalization', input: ['n1', 'g2', 'beta2', 'mean2', 'var2'], output: ['n2'] }));
    g.node[3].input[0] = 'n2';
    g.initializer.push(makeFloatTensor('g2', [4], Float32Array.of(1, 1, 1, 1)), makeFloatTensor('beta2', [4], new Float32Array(4)), makeFloatTensor('mean2', [4], new Float32Array(4)), makeFloatTensor('var2', [4], Float32Array.of(1, 1, 1, 1)));
    const data = calibSet(20);
    // each node's capture runs the first Conv, 2592 of the model's 5088 MACs: one capture per node is
    // 2 x 2592 x 20 = 103680 MACs, more than the 102000 left, while one pass (101760) fits
    const one = await reestimateBatchNorm(m, data, 0, { work: new WorkMeter(102_000) });
    expect(one.nodes).toHaveLength(2);
    expect(one.bound?.kind).toBe('one-pass');
    expect(batchNormBoundText(one.bound!)).toBe('statistics of all 2 nodes measured in one pass (each before the earlier ones were updated): one pass per node would be about 0.00010 GMAC, 0.00010 GMAC were left of the recovery work allowance');
    // the first node's statistics match the sequential result (nothing before it changed)
    const seq = await reestimateBatchNorm(m, data, 0, {});
    expect(seq.bound).toBeUndefined();
    const first = (x: ModelProto) => ['mean', 'var'].map((n) => Array.from(tensorToFloat32(x.graph!.initializer.find((t) => t.name === n)!)));
    const a = first(one.model).flat();
    const b = first(seq.model).flat();
    a.forEach((v, i) => expect(v).toBeCloseTo(b[i], 5));
  });
});

describe('distillation bounds', () => {
  it('refuses a step whose memory estimate exceeds the bound; null when it fits', () => {
    const m = smallCnn();
    expect(distillUnfit(m, { batch: 64, maxBytes: 1 << 30 })).toBeNull();
    expect(distillUnfit(m, { batch: 64, maxBytes: 1000 })?.kind).toBe('memory');
    expect(distillUnfitText(distillUnfit(m, { batch: 64, maxBytes: 1000 })!)).toMatch(/^a training step needs about \d+ MB \(0\.0M parameters x 5, 64 samples x 0\.0 MB of activations\), over the 0 MB bound$/);
    expect(distillUnfitText({ kind: 'work', epochMacs: 56e9, leftMacs: 30e9 })).toBe('one epoch is about 56 GMAC (5.6 passes over the calibration set), more than the 30 GMAC left of the recovery work allowance');
  });
});

describe('refit sizes', () => {
  it('solves aligned wide layers in column blocks and unaligned ones whole', () => {
    expect(columnBlocks(2049, true, 1024)).toEqual([683, 683, 683]);
    expect(columnBlocks(1000, true, 1024)).toEqual([1000]);
    expect(columnBlocks(2049, false, 1024)).toEqual([2049]);
    // VGG-16 fc6 (25088 inputs + bias): 4 Gram matrices of float64 alone are ~20 GB
    expect(refitBytes(512, 25089, 25089, 1004)).toBeGreaterThan(20e9);
  });
});
