import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type Dataset } from '../../src/data/dataset.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { loadModel, saveModel } from '../../src/onnx/model.js';
import type { ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { evaluateClassifier } from '../../src/onnx/runtime/classifier.js';
import { sessionFromModel } from '../../src/onnx/runtime/session.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { DataType } from '../../src/onnx/tensor.js';
import { calibrateRanges } from '../../src/quantize/calibration.js';
import { foldBatchNorms } from '../../src/quantize/foldBatchNorm.js';
import { kernelReport, optimisedGraph } from '../../src/quantize/kernels.js';
import { qdqSupport, quantizableNodes, quantizeQdq, tensorsToCalibrate } from '../../src/quantize/qdq.js';
import { buildQuantized, prepareQuantization } from '../../src/quantize/prepare.js';
import type { ActivationType } from '../../src/quantize/params.js';
import { aliasConvBiases } from '../support/aliasedBiases.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { onnxCheck } from '../support/onnxChecker.js';

function slice(d: Dataset, n: number): Dataset {
  const inputs = new Map([...d.inputs].map(([k, a]) => [k, { ...a, dims: [n, ...a.dims.slice(1)], data: a.data.subarray(0, (a.data.length / a.dims[0]) * n) }]));
  return { ...d, count: n, inputs, labels: d.labels ? d.labels.subarray(0, n) : null };
}

function data(model: ModelProto, file: string, n: number): Dataset {
  return slice(loadDataset(file, modelInputs(model, 'model'), { requireLabels: false }), n);
}

async function top1(model: ModelProto, d: Dataset): Promise<Int32Array> {
  const s = await sessionFromModel(model, 1, { lean: true });
  try {
    return (await evaluateClassifier(s, d, { batchSize: 64, modelPath: 'm', unlabelled: true })).pred;
  } finally {
    await s.release();
  }
}

const agreement = (a: Int32Array, b: Int32Array) => a.reduce((n, v, i) => n + (v === b[i] ? 1 : 0), 0) / a.length;

async function quantize(model: ModelProto, calib: Dataset, keepFloat = new Set<string>(), weightBits: 7 | 8 = 7, activations: ActivationType = 'uint8') {
  const { model: folded } = foldBatchNorms(model);
  const ranges = await calibrateRanges(folded, calib, tensorsToCalibrate(folded, keepFloat), 'minmax', 1);
  return quantizeQdq(folded, { ranges, keepFloat, weightBits, activations, perChannel: true });
}

describe('BatchNormalization folding', () => {
  it('folds every Conv -> BatchNormalization of the CNN and ResNet (aliased parameters included) without changing predictions', async () => {
    for (const name of ['cnn-bn.onnx', 'resnet.onnx']) {
      const m = loadModel(fixture(name)).proto;
      const { model: folded, folded: names } = foldBatchNorms(m);
      expect(folded.graph!.node.filter((n) => n.opType === 'BatchNormalization')).toEqual([]);
      expect(names.length).toBe(m.graph!.node.filter((n) => n.opType === 'BatchNormalization').length);
      const d = data(m, fixture('fmnist-test.npz'), 200);
      expect(agreement(await top1(m, d), await top1(folded, d))).toBe(1);
    }
  });
});

describe('static QDQ rewrite', () => {
  let mlp: ModelProto;
  let calib: Dataset;
  beforeAll(() => {
    mlp = loadModel(fixture('mlp.onnx')).proto;
    calib = data(mlp, fixture('fmnist-calib.npz'), 128);
  });

  it('writes onnxruntime\'s QDQ layout: uint8 activation pairs, int8 per-channel weights, int32 biases, Relus absorbed', async () => {
    const r = await quantize(mlp, calib);
    const g = r.model.graph!;
    const index = new GraphIndex(g);
    const ops = g.node.map((n) => n.opType);
    expect(ops.filter((o) => o === 'Relu')).toEqual([]);
    expect(r.absorbed.length).toBe(2);
    for (const gemm of g.node.filter((n) => n.opType === 'Gemm')) {
      const [x, w, b] = gemm.input.map((i) => index.producer.get(i)!);
      expect([x.opType, w.opType, b.opType]).toEqual(['DequantizeLinear', 'DequantizeLinear', 'DequantizeLinear']);
      expect(index.producer.get(x.input[0])!.opType).toBe('QuantizeLinear');
      expect(index.initializers.get(x.input[2])!.dataType).toBe(DataType.UINT8);
      const wq = index.initializers.get(w.input[0])!;
      expect(wq.dataType).toBe(DataType.INT8);
      expect(Number(index.initializers.get(w.input[1])!.dims[0])).toBe(Number(wq.dims[0])); // transB=1: one scale per output row
      expect(index.initializers.get(b.input[0])!.dataType).toBe(DataType.INT32);
    }
    // no float weight is left behind
    expect(g.initializer.filter((t) => t.dataType === DataType.FLOAT && t.dims.length === 2)).toEqual([]);
  });

  it('the quantized MLP agrees with float on held-out images and onnxruntime fuses every Gemm into QGemm', async () => {
    const r = await quantize(mlp, calib);
    const test = data(mlp, fixture('fmnist-test.npz'), 500);
    expect(agreement(await top1(mlp, test), await top1(r.model, test))).toBeGreaterThan(0.97);
    const dir = tempDir();
    const file = path.join(dir, 'mlp.int8.onnx');
    saveModel(r.model, file);
    const report = kernelReport(r.model, await optimisedGraph(file));
    expect(report.layers.map((l) => l.kernel)).toEqual(['QGemm', 'QGemm', 'QGemm']);
    expect(report.float_compute_nodes).toBe(0);
    onnxCheck(file);
  });

  it('keeps a node in float when asked, and the report names the float kernel', async () => {
    const first = quantizableNodes(mlp).find((q) => q.kind === 'gemm')!.label;
    const r = await quantize(mlp, calib, new Set([first]));
    expect(r.quantized).not.toContain(first);
    const file = path.join(tempDir(), 'mlp.int8.onnx');
    saveModel(r.model, file);
    const report = kernelReport(r.model, await optimisedGraph(file));
    const layer = report.layers.find((l) => l.node === first)!;
    expect(layer.integer).toBe(false);
    expect(report.layers.filter((l) => l.integer).length).toBe(2);
  });

  it('after a first conv kept float, its Relu and MaxPool stay float (pool first) and the integer layers read the pooled tensor', async () => {
    const cnn = loadModel(fixture('cnn-bn.onnx')).proto;
    const d = data(cnn, fixture('fmnist-calib.npz'), 128);
    const first = quantizableNodes(cnn).find((q) => q.kind === 'conv')!.label;
    const r = await quantize(cnn, d, new Set([first]));
    const index = new GraphIndex(r.model.graph!);
    const conv = index.order.find((n) => n.opType === 'Conv' && index.producer.get(n.input[1])?.opType !== 'DequantizeLinear')!;
    const [pool] = index.consumersOf(conv.output[0]);
    expect(pool.opType).toBe('MaxPool');
    const [relu] = index.consumersOf(pool.output[0]);
    expect(relu.opType).toBe('Relu');
    expect(index.consumersOf(relu.output[0]).map((n) => n.opType)).toEqual(['QuantizeLinear']);
    const test = data(cnn, fixture('fmnist-test.npz'), 300);
    expect(agreement(await top1(cnn, test), await top1(r.model, test))).toBeGreaterThan(0.97);
    // onnxruntime would move a QuantizeLinear right after the pool up through it; after the Relu it stays
    const file = path.join(tempDir(), 'cnn.first-float.onnx');
    saveModel(r.model, file);
    const optimised = new GraphIndex((await optimisedGraph(file)).graph!);
    const pools = optimised.order.filter((n) => n.opType === 'MaxPool');
    expect(pools).toHaveLength(1);
    expect(optimised.producer.get(pools[0].input[0])?.opType).not.toBe('QuantizeLinear');
    onnxCheck(file);
  });

  it('with int8 activations writes int8 zero points on the same grid as uint8 and the model predicts as uint8\'s', async () => {
    const resnet = loadModel(fixture('resnet.onnx')).proto;
    const d = data(resnet, fixture('fmnist-calib.npz'), 64);
    const u = await quantize(resnet, d, new Set(), 8, 'uint8');
    const s = await quantize(resnet, d, new Set(), 8, 'int8');
    const zeroPoints = (m: ModelProto) => {
      const index = new GraphIndex(m.graph!);
      return m.graph!.node.filter((n) => n.opType === 'QuantizeLinear').map((n) => index.initializers.get(n.input[2])!);
    };
    const [zu, zs] = [zeroPoints(u.model), zeroPoints(s.model)];
    expect(zs.length).toBe(zu.length);
    expect(zu.every((t) => t.dataType === DataType.UINT8)).toBe(true);
    expect(zs.every((t) => t.dataType === DataType.INT8)).toBe(true);
    expect(zs.map((t) => new Int8Array(t.rawData.buffer, t.rawData.byteOffset, 1)[0])).toEqual(zu.map((t) => t.rawData[0] - 128));
    expect(s.absorbed).toEqual(u.absorbed);
    const file = path.join(tempDir(), 'resnet.s8.onnx');
    saveModel(s.model, file);
    onnxCheck(file);
    const test = data(resnet, fixture('fmnist-test.npz'), 200);
    expect(agreement(await top1(u.model, test), await top1(s.model, test))).toBeGreaterThan(0.99);
  });

  it('onnxruntime fuses the MLP with int8 activations into QGemm too (which kernels a larger model gets is measured, not assumed)', async () => {
    const r = await quantize(mlp, calib, new Set(), 8, 'int8');
    const file = path.join(tempDir(), 'mlp.s8.onnx');
    saveModel(r.model, file);
    const report = kernelReport(r.model, await optimisedGraph(file));
    expect(report.layers.map((l) => l.kernel)).toEqual(['QGemm', 'QGemm', 'QGemm']);
  });

  it('per-channel from opset 13, per-tensor below, refused below opset 10 and for float16 models', () => {
    expect(qdqSupport(mlp).kind).toBe('per-channel');
    expect(qdqSupport(loadModel(fixture('exports/cnn-opset12.onnx')).proto).kind).toBe('per-tensor');
    expect(qdqSupport(loadModel(fixture('exports/cnn-opset9.onnx')).proto)).toMatchObject({ kind: 'unsupported', reason: expect.stringContaining('opset 9') });
    expect(qdqSupport(loadModel(fixture('exports/cnn-fp16.onnx')).proto).kind).toBe('unsupported');
  });

  it('at opset 12 writes per-tensor weights that onnxruntime accepts', async () => {
    const m = loadModel(fixture('exports/cnn-opset12.onnx')).proto;
    const d = data(m, fixture('fmnist-calib.npz'), 64);
    const { model: folded } = foldBatchNorms(m);
    const ranges = await calibrateRanges(folded, d, tensorsToCalibrate(folded), 'minmax', 1);
    const r = quantizeQdq(folded, { ranges, keepFloat: new Set(), weightBits: 7, activations: 'uint8', perChannel: true });
    expect(r.perChannel).toBe(false);
    expect(r.model.graph!.node.filter((n) => n.opType === 'DequantizeLinear').every((n) => n.attribute.length === 0)).toBe(true);
    const test = data(m, fixture('fmnist-test.npz'), 300);
    expect(agreement(await top1(m, test), await top1(r.model, test))).toBeGreaterThan(0.95);
    const file = path.join(tempDir(), 'cnn12.int8.onnx');
    saveModel(r.model, file);
    onnxCheck(file);
  });
});

describe('constants an exporter aliased through Identity', () => {
  it('a Conv reading its bias through an Identity of the initializer is quantized like any other', async () => {
    const model = aliasConvBiases(loadModel(fixture('cnn-bn.onnx')).proto);
    const convs = model.graph!.node.filter((n) => n.opType === 'Conv').length;
    // the rewrite looks for a bias initializer on the Conv itself
    expect(quantizableNodes(model).filter((n) => n.opType === 'Conv')).toEqual([]);
    const calib = data(model, fixture('fmnist-calib.npz'), 64);
    const prep = await prepareQuantization(model, calib, { calibrator: 'minmax', exclude: [], threads: 1 });
    expect(prep.nodes.filter((n) => n.opType === 'Conv').length).toBe(convs);
    const q = buildQuantized(prep, new Set(), 8).model;
    const index = new GraphIndex(q.graph!);
    for (const conv of q.graph!.node.filter((n) => n.opType === 'Conv')) expect(index.producer.get(conv.input[2])!.opType).toBe('DequantizeLinear');
    const d = data(model, fixture('fmnist-test.npz'), 200);
    expect(agreement(await top1(model, d), await top1(q, d))).toBeGreaterThan(0.97);
  });
});
