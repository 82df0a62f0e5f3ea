import * as path from 'node:path';
import fc from 'fast-check';
import * as ort from 'onnxruntime-node';
import { create } from '@bufbuild/protobuf';
import { beforeAll, describe, expect, it } from 'vitest';
import { GraphIndex } from '../../src/onnx/graph.js';
import { loadModel, saveModel } from '../../src/onnx/model.js';
import { NodeProtoSchema, AttributeProtoSchema, AttributeProto_AttributeType, type ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { tensorToFloat32 } from '../../src/onnx/tensor.js';
import { nmMask, nmPrune, parseNM, reductionLayout, verifyNM, type ReductionLayout } from '../../src/prune/nm.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { countSparsity } from '../../src/prune/sparsity.js';
import { oneOpModel, seededWeights } from '../support/buildModel.js';
import { fixture, present, realWorld, tempDir } from '../support/fixtures.js';
import { onnxCheck } from '../support/onnxChecker.js';

const NONE = { exclude: [], keepFirstLayer: false, keepLastLayer: false };

/** Reference: rank each group by |w| descending, earlier position first among equals; keep the first N. */
function referenceMask(values: Float32Array, { outer, length, inner }: ReductionLayout, n: number, m: number): Uint8Array {
  const mask = new Uint8Array(values.length).fill(1);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      for (let g = 0; g + m <= length; g += m) {
        const idx = Array.from({ length: m }, (_, j) => o * length * inner + (g + j) * inner + i);
        idx.sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b);
        for (const k of idx.slice(n)) mask[k] = 0;
      }
    }
  }
  return mask;
}

describe('parseNM', () => {
  it('reads N:M with 1 <= N < M and rejects everything else', () => {
    expect(parseNM('2:4')).toEqual({ n: 2, m: 4 });
    expect(parseNM('16:32')).toEqual({ n: 16, m: 32 });
    for (const bad of ['4:4', '4:2', '0:4', '2:0', 'unstructured', '2:4:8', ' 2:4', '02:4']) expect(parseNM(bad)).toBeUndefined();
  });
});

describe('nmMask', () => {
  it('keeps the N largest |w| of every group of M along a contiguous row', () => {
    const v = Float32Array.from([0.1, -0.9, 0.5, 0.2, /* next group */ -3, 1, 2, 0]);
    const mask = nmMask(v, { outer: 1, length: 8, inner: 1 }, 2, 4);
    expect(Array.from(mask)).toEqual([0, 1, 1, 0, 1, 0, 1, 0]);
  });

  it('groups along a strided axis (columns of W[in, out]) when inner > 1', () => {
    // W[in=4, out=2]: column 0 is 1, 2, 3, 4; column 1 is 8, 7, 6, 5
    const v = Float32Array.from([1, 8, 2, 7, 3, 6, 4, 5]);
    const mask = nmMask(v, { outer: 1, length: 4, inner: 2 }, 2, 4);
    expect(Array.from(mask)).toEqual([0, 1, 0, 1, 1, 0, 1, 0]);
  });

  it('ties keep the earlier position, so exactly N survive per group', () => {
    const v = new Float32Array(16).fill(0.5);
    v[6] = -0.5;
    const mask = nmMask(v, { outer: 2, length: 8, inner: 1 }, 2, 4);
    expect(Array.from(mask)).toEqual([1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0]);
  });

  it('leaves the tail of a row dense when its length is not a multiple of M, and whole rows shorter than M', () => {
    const v = Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.01, 0.02, /* row 2 */ 1, 2, 3, 4, 5, 6]);
    const mask = nmMask(v, { outer: 2, length: 6, inner: 1 }, 1, 4);
    expect(Array.from(mask)).toEqual([0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1]);
    expect(Array.from(nmMask(Float32Array.from([0, 0, 1]), { outer: 1, length: 3, inner: 1 }, 2, 4))).toEqual([1, 1, 1]);
  });

  it('counts stored zeros as smallest and ranks NaN as largest (never hides it)', () => {
    const v = Float32Array.from([0, NaN, 0, 0.1]);
    expect(Array.from(nmMask(v, { outer: 1, length: 4, inner: 1 }, 2, 4))).toEqual([0, 1, 0, 1]);
  });

  it('matches the sort-based reference for random layouts, patterns and tie-heavy values', () => {
    const arb = fc.record({
      outer: fc.integer({ min: 1, max: 4 }),
      length: fc.integer({ min: 1, max: 80 }),
      inner: fc.integer({ min: 1, max: 3 }),
      m: fc.integer({ min: 2, max: 40 }),
      nFrac: fc.double({ min: 0, max: 0.999, noNaN: true }),
      seed: fc.integer({ min: 1, max: 1e9 }),
      levels: fc.constantFrom(3, 1000),
    });
    fc.assert(
      fc.property(arb, ({ outer, length, inner, m, nFrac, seed, levels }) => {
        const n = 1 + Math.floor(nFrac * (m - 1));
        // few levels -> many exact ties, including between signs
        const v = seededWeights(outer * length * inner, seed).map((x) => Math.round(x * levels) / levels);
        const layout = { outer, length, inner };
        expect(Array.from(nmMask(v, layout, n, m))).toEqual(Array.from(referenceMask(v, layout, n, m)));
      }),
      { numRuns: 300 },
    );
  });
});

function saveTemp(model: ModelProto, name: string): string {
  const file = path.join(tempDir(), name);
  saveModel(model, file);
  return file;
}

async function runsInOrt(file: string, feeds: Record<string, ort.Tensor>): Promise<void> {
  const s = await ort.InferenceSession.create(file);
  try {
    const out = await s.run(feeds);
    for (const t of Object.values(out)) expect(Array.from(t.data as Float32Array).every(Number.isFinite)).toBe(true);
  } finally {
    await s.release();
  }
}

const FIXTURE_MODELS = ['mlp.onnx', 'cnn-bn.onnx', 'resnet.onnx', 'dsconv-concat.onnx', 'vit.onnx']
  .map((f) => ({ name: f, file: fixture(f) }))
  .concat([{ name: 'real-world mnist-cnn-pytorch', file: realWorld('model.onnx') }]);

describe.each(FIXTURE_MODELS)('N:M on $name, verified in the saved file', ({ file }) => {
  let proto: ModelProto;
  let weights: ReturnType<typeof prunableWeights>;
  beforeAll(() => {
    proto = loadModel(present(file)).proto;
    weights = prunableWeights(proto, NONE);
  });

  it('the dense model does not already satisfy 2:4 (so the checker can fail)', () => {
    expect(verifyNM(proto, weights, 2, 4).length).toBeGreaterThan(0);
  });

  it.each([
    [2, 4],
    [1, 4],
    [4, 8],
  ])('%i:%i: pattern holds on disk, kept and tail weights are unchanged, sparsity is 1 - N/M of the grouped weights', (n, m) => {
    const r = nmPrune(proto, weights, n, m);
    const saved = saveTemp(r.model, 'nm.onnx');
    const back = loadModel(saved).proto;
    expect(verifyNM(back, weights, n, m)).toEqual([]);
    expect(r.skipped).toEqual([]);
    const orig = new GraphIndex(proto.graph!);
    const next = new GraphIndex(back.graph!);
    let zeros = 0;
    let grouped = 0;
    for (const l of r.layers) {
      const a = tensorToFloat32(orig.initializers.get(l.initializer)!);
      const b = tensorToFloat32(next.initializers.get(l.initializer)!);
      const mask = r.masks.get(l.initializer)!;
      let wrong = 0;
      for (let i = 0; i < a.length; i++) if (b[i] !== (mask[i] ? a[i] : 0)) wrong++;
      expect(wrong).toBe(0);
      const z = countSparsity(back, [weights.find((w) => w.initializer === l.initializer)!]).zeros;
      zeros += z;
      grouped += l.grouped;
      expect(z).toBeGreaterThanOrEqual((l.grouped * (m - n)) / m);
    }
    // trained float weights hold no exact zeros or ties that would change the count
    expect(zeros).toBe((grouped * (m - n)) / m);
  });

  it('2:4 output passes onnx.checker', () => {
    const r = nmPrune(proto, weights, 2, 4);
    expect(() => onnxCheck(saveTemp(r.model, 'nm.onnx'))).not.toThrow();
  });

  it('the input model is not modified', () => {
    nmPrune(proto, weights, 2, 4);
    expect(verifyNM(proto, weights, 2, 4).length).toBeGreaterThan(0);
  });
});

describe('N:M on Conv: groups run along the flattened Cin*kh*kw fan-in of each output channel', () => {
  it('cnn-bn first conv [16,1,3,3]: 2 full groups and a dense 9th weight per output channel', () => {
    const { proto } = loadModel(fixture('cnn-bn.onnx'));
    const [first] = prunableWeights(proto, NONE);
    expect(first.dims).toEqual([16, 1, 3, 3]);
    const r = nmPrune(proto, [first], 2, 4);
    expect(r.layers[0]).toMatchObject({ layout: { outer: 16, length: 9, inner: 1 }, grouped: 128, tail: 16 });
    const before = tensorToFloat32(new GraphIndex(proto.graph!).initializers.get(first.initializer)!);
    const after = tensorToFloat32(new GraphIndex(r.model.graph!).initializers.get(first.initializer)!);
    for (let c = 0; c < 16; c++) {
      const row = after.subarray(c * 9, c * 9 + 9);
      expect(row.subarray(0, 4).filter((x) => x !== 0).length).toBe(2);
      expect(row.subarray(4, 8).filter((x) => x !== 0).length).toBe(2);
      expect(row[8]).toBe(before[c * 9 + 8]);
    }
  });
});

describe('N:M on hand-built layouts', () => {
  const cases = [
    {
      name: 'Gemm transB=1 W[out=3, in=8]: along rows',
      model: () => oneOpModel({ opType: 'Gemm', y: [2, 3], x: [2, 8], weight: { dims: [3, 8], values: seededWeights(24, 3) }, ints: { transB: 1 } }),
      layout: { outer: 3, length: 8, inner: 1 },
      feeds: () => ({ x: new ort.Tensor('float32', seededWeights(16, 9), [2, 8]) }),
    },
    {
      name: 'Gemm transB=0 W[in=6, out=3]: along columns, 2 dense per column',
      model: () => oneOpModel({ opType: 'Gemm', y: [2, 3], x: [2, 6], weight: { dims: [6, 3], values: seededWeights(18, 4) } }),
      layout: { outer: 1, length: 6, inner: 3 },
      feeds: () => ({ x: new ort.Tensor('float32', seededWeights(12, 9), [2, 6]) }),
    },
    {
      name: 'MatMul x @ W[in=8, out=5]: along columns',
      model: () => oneOpModel({ opType: 'MatMul', y: [2, 5], x: [2, 8], weight: { dims: [8, 5], values: seededWeights(40, 5) } }),
      layout: { outer: 1, length: 8, inner: 5 },
      feeds: () => ({ x: new ort.Tensor('float32', seededWeights(16, 9), [2, 8]) }),
    },
    {
      name: 'MatMul W[out=5, in=8] @ x: along rows',
      model: () => oneOpModel({ opType: 'MatMul', y: [5, 2], x: [8, 2], weight: { dims: [5, 8], values: seededWeights(40, 6) }, weightFirst: true }),
      layout: { outer: 5, length: 8, inner: 1 },
      feeds: () => ({ x: new ort.Tensor('float32', seededWeights(16, 9), [8, 2]) }),
    },
    {
      name: 'batched MatMul x @ W[2, in=4, out=3]: along each batch slice',
      model: () => oneOpModel({ opType: 'MatMul', y: [2, 1, 3], x: [2, 1, 4], weight: { dims: [2, 4, 3], values: seededWeights(24, 7) } }),
      layout: { outer: 2, length: 4, inner: 3 },
      feeds: () => ({ x: new ort.Tensor('float32', seededWeights(8, 9), [2, 1, 4]) }),
    },
    {
      name: 'ConvTranspose W[Cin=8, Cout/g=3, 2, 2], group 2: along Cin/g',
      model: () => oneOpModel({ opType: 'ConvTranspose', y: [1, 6, 4, 4], x: [1, 8, 3, 3], weight: { dims: [8, 3, 2, 2], values: seededWeights(96, 8) }, ints: { group: 2 } }),
      layout: { outer: 2, length: 4, inner: 12 },
      feeds: () => ({ x: new ort.Tensor('float32', seededWeights(72, 9), [1, 8, 3, 3]) }),
    },
    {
      name: 'depthwise Conv W[4, 1, 1, 1]: fan-in 1 < M, stays dense',
      model: () => oneOpModel({ opType: 'Conv', y: [1, 4, 2, 2], x: [1, 4, 2, 2], weight: { dims: [4, 1, 1, 1], values: seededWeights(4, 2) }, ints: { group: 4 } }),
      layout: { outer: 4, length: 1, inner: 1 },
      feeds: () => ({ x: new ort.Tensor('float32', seededWeights(16, 9), [1, 4, 2, 2]) }),
    },
  ];

  it.each(cases)('$name', async ({ model, layout, feeds }) => {
    const proto = model();
    const weights = prunableWeights(proto, NONE);
    expect(weights.map((w) => w.initializer)).toEqual(['W']);
    expect(reductionLayout(new GraphIndex(proto.graph!), 'W')).toEqual(layout);
    const r = nmPrune(proto, weights, 2, 4);
    const file = saveTemp(r.model, 'one.onnx');
    const back = loadModel(file).proto;
    expect(verifyNM(back, weights, 2, 4)).toEqual([]);
    const before = tensorToFloat32(proto.graph!.initializer[0]);
    const after = tensorToFloat32(back.graph!.initializer[0]);
    expect(Array.from(r.masks.get('W')!)).toEqual(Array.from(referenceMask(before, layout, 2, 4)));
    expect(after.filter((v) => v === 0).length).toBe(r.layers[0].grouped / 2);
    onnxCheck(file);
    await runsInOrt(file, feeds());
  });

  it('the same values checked along the wrong axis are reported as violations', () => {
    const rows = oneOpModel({ opType: 'Gemm', y: [2, 8], x: [2, 8], weight: { dims: [8, 8], values: seededWeights(64, 11) }, ints: { transB: 1 } });
    const cols = oneOpModel({ opType: 'Gemm', y: [2, 8], x: [2, 8], weight: { dims: [8, 8], values: seededWeights(64, 11) }, ints: { transB: 0 } });
    const pruned = nmPrune(rows, prunableWeights(rows, NONE), 2, 4).model;
    // move the row-pruned weight into the transB=0 model: its columns break the pattern
    cols.graph!.initializer[0] = pruned.graph!.initializer[0];
    expect(verifyNM(pruned, [{ initializer: 'W' }], 2, 4)).toEqual([]);
    const v = verifyNM(cols, [{ initializer: 'W' }], 2, 4);
    expect(v.length).toBeGreaterThan(0);
    expect(v[0].message).toMatch(/^W: row \d+, group at \d+ has [34] nonzeros, more than 2 of 4$/);
  });

  it('one extra nonzero is found at its row and group', () => {
    const model = oneOpModel({ opType: 'Gemm', y: [2, 3], x: [2, 8], weight: { dims: [3, 8], values: seededWeights(24, 12) }, ints: { transB: 1 } });
    const r = nmPrune(model, prunableWeights(model, NONE), 2, 4);
    const t = r.model.graph!.initializer[0];
    const v = tensorToFloat32(t);
    const hole = v.findIndex((x, i) => i >= 12 && x === 0); // row 1, second group
    v[hole] = 0.25;
    t.rawData = new Uint8Array(v.buffer);
    expect(verifyNM(r.model, [{ initializer: 'W' }], 2, 4)).toEqual([
      { initializer: 'W', row: 1, offset: 4, nonzero: 3, message: 'W: row 1, group at 4 has 3 nonzeros, more than 2 of 4' },
    ]);
  });

  it('a weight shared by nodes that sum over different axes is left dense and reported as skipped', () => {
    const model = oneOpModel({ opType: 'MatMul', y: [2, 4], x: [2, 4], weight: { dims: [4, 4], values: seededWeights(16, 13) } });
    model.graph!.node.push(
      create(NodeProtoSchema, {
        name: 'Gemm_1',
        opType: 'Gemm',
        input: ['x', 'W'],
        output: ['y2'],
        attribute: [create(AttributeProtoSchema, { name: 'transB', type: AttributeProto_AttributeType.INT, i: 1n })],
      }),
    );
    const r = nmPrune(model, [{ initializer: 'W', node: 'MatMul_0', opType: 'MatMul', dims: [4, 4] }], 2, 4);
    expect(r.layers).toEqual([]);
    expect(r.skipped[0]).toMatchObject({ initializer: 'W', reason: expect.stringMatching(/different axes/) });
    expect(Array.from(tensorToFloat32(r.model.graph!.initializer[0]))).toEqual(Array.from(tensorToFloat32(model.graph!.initializer[0])));
  });
});

describe.each(['exports/vit-einsum.onnx', 'exports/vit-fusedqkv.onnx'])('2:4 on the trained ViT exported as %s', (file) => {
  it('holds the pattern on disk for every projection, as on the MatMul export', () => {
    const { proto } = loadModel(fixture(file));
    const weights = prunableWeights(proto, NONE);
    const r = nmPrune(proto, weights, 2, 4);
    expect(r.skipped).toEqual([]);
    expect(r.layers).toHaveLength(weights.length);
    expect(verifyNM(loadModel(saveTemp(r.model, 'nm.onnx')).proto, weights, 2, 4)).toEqual([]);
  });
});
