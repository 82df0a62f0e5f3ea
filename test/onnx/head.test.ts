import { create } from '@bufbuild/protobuf';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLabels, findHead, headProblemMessage, type HeadResult } from '../../src/onnx/head.js';
import { loadModel } from '../../src/onnx/model.js';
import { AttributeProto_AttributeType, NodeProtoSchema, type ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { FIXTURES } from '../support/fixtures.js';

const at = (file: string): ModelProto => loadModel(path.join(FIXTURES, 'exports', file)).proto;
const head = (r: HeadResult) => {
  if (!r.ok) throw new Error(`expected a head, got ${r.problem.kind}`);
  return r.head;
};

describe('findHead: the output judged and what its values are', () => {
  it('reads logits, log-probabilities, and probabilities behind Flatten, Squeeze or as [N,C,1,1]', () => {
    expect(head(findHead(at('cnn-opset13.onnx')))).toMatchObject({ output: 'logits', task: 'multiclass', form: 'logits', width: 10, scores: 'logits' });
    expect(head(findHead(at('cnn-logsoftmax.onnx')))).toMatchObject({ task: 'multiclass', form: 'log-probabilities', width: 10, activation: 'LogSoftmax' });
    for (const [file, through] of [['sqz-softmax-flatten.onnx', ['Flatten']], ['sqz-softmax-squeeze.onnx', ['Squeeze', 'Squeeze']], ['sqz-softmax4d.onnx', []]] as const) {
      const h = head(findHead(at(file)));
      expect(h, file).toMatchObject({ output: 'probs', task: 'multiclass', form: 'probabilities', width: 10, activation: 'Softmax', through });
      // temperature divides, and distillation matches, the Softmax's input, not the probabilities
      expect(h.scores).not.toBe('probs');
    }
  });

  it('reads a sigmoid [N,1] or [N] as binary and [N,K] as multi-label', () => {
    expect(head(findHead(at('tokens-sigmoid.onnx')))).toMatchObject({ task: 'binary', form: 'probabilities', width: 1, activation: 'Sigmoid' });
    expect(head(findHead(at('tokens-sigmoid-flat.onnx')))).toMatchObject({ task: 'binary', width: 1, through: ['Squeeze'] });
    expect(head(findHead(at('fmnist-multilabel.onnx')))).toMatchObject({ task: 'multilabel', width: 5 });
  });

  it('reads float16 outputs as scores of their own type', () => {
    expect(head(findHead(at('cnn-fp16.onnx')))).toMatchObject({ task: 'multiclass', form: 'logits', elemType: 10 });
  });

  it('refuses several outputs without --output, naming them, --output and --task fidelity', () => {
    const r = findHead(at('detector.onnx'));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problem).toEqual({ kind: 'several-outputs', outputs: [{ name: 'boxes', dims: '[batch,49,4]' }, { name: 'scores', dims: '[batch,49,3]' }] });
    const line = headProblemMessage(r.problem, 'detector.onnx');
    expect(line).toContain('--output NAME');
    expect(line).toContain('--task fidelity');
    expect(line).not.toContain('\n');
  });

  it('refuses an output that is not one score per class, and an unknown --output', () => {
    const r = findHead(at('detector.onnx'), { output: 'scores' });
    expect(r.ok ? undefined : r.problem).toEqual({ kind: 'not-scores', output: 'scores', dims: '[batch,49,3]' });
    const missing = findHead(at('detector.onnx'), { output: 'logits' });
    expect(missing.ok ? undefined : headProblemMessage(missing.problem, 'd.onnx')).toBe("--output logits: the model has no output of that name; its outputs are 'boxes', 'scores'");
  });

  it('refuses a Softmax over an axis that is not the classes', () => {
    const model = at('sqz-softmax4d.onnx');
    const softmax = model.graph!.node.find((n) => n.opType === 'Softmax')!;
    softmax.attribute = [{ name: 'axis', type: AttributeProto_AttributeType.INT, i: 2n } as never];
    // axis 2 of [N,10,1,1] normalises each class on its own: every value is 1
    const r = findHead(model);
    expect(r.ok ? undefined : r.problem.kind).toBe('softmax-axis');
  });

  it('refuses one value per sample without a Sigmoid', () => {
    const model = at('tokens-sigmoid.onnx');
    const g = model.graph!;
    const sigmoid = g.node.find((n) => n.opType === 'Sigmoid')!;
    g.node = g.node.filter((n) => n !== sigmoid);
    g.node.push(create(NodeProtoSchema, { opType: 'Identity', input: sigmoid.input, output: sigmoid.output }));
    const r = findHead(model);
    expect(r.ok ? undefined : r.problem.kind).toBe('single-score');
  });
});

describe('checkLabels', () => {
  const classes = head(findHead(at('cnn-opset13.onnx')));
  const binary = head(findHead(at('tokens-sigmoid.onnx')));
  const multi = head(findHead(at('fmnist-multilabel.onnx')));
  it('wants class ids for classes, 0/1 for a sigmoid, a [N,K] matrix of the output labels for multi-label', () => {
    expect(checkLabels(classes, Int32Array.of(3, 9), 1, 'y.npz')).toBeUndefined();
    expect(checkLabels(classes, Int32Array.of(1, 0, 0, 1), 2, 'y.npz')?.kind).toBe('labels-matrix-for-classes');
    expect(checkLabels(binary, Int32Array.of(0, 1, 1), 1, 'y.npz')).toBeUndefined();
    expect(checkLabels(binary, Int32Array.of(0, 2), 1, 'y.npz')).toEqual({ kind: 'labels-not-binary', output: 'prob', value: 2 });
    expect(checkLabels(multi, new Int32Array(10), 5, 'y.npz')).toBeUndefined();
    expect(checkLabels(multi, new Int32Array(6), 3, 'y.npz')).toEqual({ kind: 'label-width', output: 'probs', labels: 5, labelWidth: 3 });
    expect(checkLabels(multi, null, 1, 'u.npz')).toEqual({ kind: 'no-labels', data: 'u.npz' });
  });
});
