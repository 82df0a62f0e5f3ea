import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDataset, sliceBatch } from '../../src/data/dataset.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { ModelEditor } from '../../src/onnx/edit.js';
import { cloneModel, loadModel, saveModel } from '../../src/onnx/model.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { DataType } from '../../src/onnx/tensor.js';
import { dynamicCandidates, quantizeDynamic } from '../../src/quantize/dynamic.js';
import { kernelReport, optimisedGraph } from '../../src/quantize/kernels.js';
import { predict } from '../../src/quantize/prepare.js';
import { aliasInput } from '../support/aliasedBiases.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { onnxCheck } from '../support/onnxChecker.js';

describe('dynamic INT8 of the fixture ViT', () => {
  it('rewrites every constant-weight MatMul into onnxruntime\'s dynamic layout, which it fuses, within 1 pt of float', async () => {
    const model = loadModel(fixture('vit.onnx')).proto;
    const all = loadDataset(fixture('fmnist-test.npz'), modelInputs(model, 'vit'), { requireLabels: true });
    const test = { ...all, count: 500, inputs: sliceBatch(all, 0, 500), labels: all.labels!.subarray(0, 500) };
    const r = quantizeDynamic(model, { weightBits: 8 });
    expect(r.quantized.length).toBe(dynamicCandidates(model).length);
    expect(r.quantized.length).toBeGreaterThan(0);
    const index = new GraphIndex(r.model.graph!);
    for (const mm of r.model.graph!.node.filter((n) => n.opType === 'MatMulInteger')) {
      expect(index.producer.get(mm.input[0])!.opType).toBe('DynamicQuantizeLinear');
      expect(index.initializers.get(mm.input[1])!.dataType).toBe(DataType.INT8);
    }
    const acc = (p: { correct: Uint8Array }) => p.correct.reduce((a, b) => a + b, 0) / p.correct.length;
    expect(Math.abs(acc(await predict(r.model, test, 'fused', 1)) - acc(await predict(model, test, 'fused', 1)))).toBeLessThanOrEqual(0.01);
    const file = path.join(tempDir(), 'vit.dynamic.onnx');
    saveModel(r.model, file);
    const ops = kernelReport(r.model, await optimisedGraph(file)).ops;
    expect((ops['com.microsoft.DynamicQuantizeMatMul'] ?? 0) + (ops['com.microsoft.MatMulIntegerToFloat'] ?? 0)).toBe(r.quantized.length);
    onnxCheck(file);
  }, 30_000);
});

describe('a MatMul weight an exporter aliased through Identity', () => {
  it('counts as a candidate and is rewritten like the others, reading the int8 initializer', () => {
    const model = loadModel(fixture('vit.onnx')).proto;
    const before = dynamicCandidates(model).length;
    const ed = new ModelEditor(cloneModel(model));
    const mm = ed.graph.node.find((n) => n.opType === 'MatMul' && ed.constant(n.input[1]))!;
    const alias = aliasInput(ed, mm, 1);
    expect(dynamicCandidates(ed.model).length).toBe(before);
    const r = quantizeDynamic(ed.model, { weightBits: 8 });
    expect(r.quantized.length).toBe(before);
    const index = new GraphIndex(r.model.graph!);
    expect(r.model.graph!.node.some((n) => n.opType === 'Identity' && n.output[0] === alias)).toBe(false);
    for (const m of r.model.graph!.node.filter((n) => n.opType === 'MatMulInteger')) expect(index.initializers.get(m.input[1])!.dataType).toBe(DataType.INT8);
  });
});
