import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDataset, sliceBatch, type Dataset } from '../../src/data/dataset.js';
import { loadModel, saveModel } from '../../src/onnx/model.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { kernelReport, optimisedGraph } from '../../src/quantize/kernels.js';
import { buildQuantized, predict, prepareQuantization } from '../../src/quantize/prepare.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { onnxCheck } from '../support/onnxChecker.js';

function first(d: Dataset, n: number): Dataset {
  return { ...d, count: n, inputs: sliceBatch(d, 0, n), labels: d.labels ? d.labels.subarray(0, n) : null };
}

const accuracy = (p: { correct: Uint8Array }): number => p.correct.reduce((a, b) => a + b, 0) / p.correct.length;

describe.each([
  { name: 'ResNet', file: 'resnet.onnx', kernels: /^(QLinearConv|QGemm)$/ },
  { name: 'depthwise CNN', file: 'dsconv-concat.onnx', kernels: /^(QLinearConv|QGemm)$/ },
])('static INT8 of the fixture $name', ({ file, kernels }) => {
  it('stays within 1 pt of float on held-out data, runs every layer in integer kernels and passes onnx.checker', async () => {
    const model = loadModel(fixture(file)).proto;
    const inputs = modelInputs(model, file);
    const calib = first(loadDataset(fixture('fmnist-calib.npz'), inputs, { requireLabels: false }), 128);
    const test = first(loadDataset(fixture('fmnist-test.npz'), inputs, { requireLabels: true }), 600);
    const prep = await prepareQuantization(model, calib, { calibrator: 'minmax', exclude: [], threads: 1 });
    const q = buildQuantized(prep, new Set(), 8);
    const [f, i] = [await predict(model, test, 'fused', 1), await predict(q.model, test, 'fused', 1)];
    expect(Math.abs(accuracy(i) - accuracy(f))).toBeLessThanOrEqual(0.01);
    const out = path.join(tempDir(), file);
    saveModel(q.model, out);
    const report = kernelReport(q.model, await optimisedGraph(out));
    expect(report.layers.length).toBeGreaterThan(5);
    for (const l of report.layers) expect(l.kernel).toMatch(kernels);
    onnxCheck(out);
  }, 60_000);
});
