import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDataset, type Dataset } from '../../src/data/dataset.js';
import { loadModel } from '../../src/onnx/model.js';
import type { ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { chooseTask, taskLine } from '../../src/pipeline/task.js';
import { FIXTURES, fixture } from '../support/fixtures.js';

const at = (file: string): ModelProto => loadModel(path.join(FIXTURES, 'exports', file)).proto;
const data = (model: ModelProto, file: string): Dataset => loadDataset(file, modelInputs(model, 'model'), { requireLabels: false });
const UNLABELLED = path.join(FIXTURES, 'exports', 'fmnist-unlabelled.npz');

describe('chooseTask', () => {
  it('auto: a single-output classifier with labels is judged on them', () => {
    const model = at('cnn-opset13.onnx');
    const t = chooseTask(model, 'cnn.onnx', { task: 'auto' }, data(model, fixture('fmnist-calib.npz')));
    expect(t.task).toBe('classification');
    if (t.task === 'classification') expect(t.head.output).toBe('logits');
  });

  it('auto: several outputs, or no labels, is fidelity over every float output, and the line says why', () => {
    const detector = at('detector.onnx');
    const d = chooseTask(detector, 'detector.onnx', { task: 'auto' }, data(detector, fixture('fmnist-calib.npz')));
    expect(d).toMatchObject({ task: 'fidelity', reason: { kind: 'not-classifier' }, outputs: [{ name: 'boxes' }, { name: 'scores' }] });
    const classifier = at('cnn-opset13.onnx');
    const c = chooseTask(classifier, 'cnn.onnx', { task: 'auto' }, data(classifier, UNLABELLED));
    // a classifier's scores without labels: compared with the dense scores, top-1 agreement over its 10 classes
    expect(c).toMatchObject({ task: 'fidelity', reason: { kind: 'no-labels', data: UNLABELLED }, outputs: [{ name: 'logits', classes: 10 }] });
    if (c.task === 'fidelity') {
      expect(taskLine(c)).toBe(`task: fidelity (${UNLABELLED} has no labels 'y'): output 'logits' judged against the dense model's on the same inputs; --task classification (config task:) judges labels instead`);
    }
  });

  it('task: fidelity is taken as asked, even for a labelled classifier', () => {
    const model = at('cnn-opset13.onnx');
    const t = chooseTask(model, 'cnn.onnx', { task: 'fidelity' }, data(model, fixture('fmnist-calib.npz')));
    expect(t).toMatchObject({ task: 'fidelity', reason: { kind: 'asked' } });
    if (t.task === 'fidelity') expect(taskLine(t)).toBe("task: fidelity (as configured): output 'logits' judged against the dense model's on the same inputs");
  });

  it('a problem with the labels or the flags is still refused under auto, not turned into fidelity', () => {
    const model = at('cnn-opset13.onnx');
    expect(() => chooseTask(model, 'cnn.onnx', { task: 'auto', output: 'nope' }, data(model, UNLABELLED))).toThrow(/--output nope: the model has no output of that name/);
  });
});
