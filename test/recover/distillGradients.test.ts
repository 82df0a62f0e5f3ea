import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { onnxruntime } from '../../src/onnx/runtime/ort.js';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { valueInfo as floatValueInfo } from '../../src/onnx/build.js';
import { ModelEditor } from '../../src/onnx/edit.js';
import { DataType } from '../../src/onnx/tensor.js';
import { GraphBuilder, type AttrValue } from '../../src/recover/distill/builder.js';
import { UnsupportedOp } from '../../src/recover/distill/gradients.js';
import { distillLoss, sigmoidDistillLoss, sigmoidValues, softmaxRows } from '../../src/recover/distill/loss.js';
import { buildEvalGraph, buildTrainGraph, hintInput, hintScale, LABEL_INPUT, selectTrainables, TEACHER_INPUT, type LossKind } from '../../src/recover/distill/trainGraph.js';
import { sessionFromModel } from '../../src/onnx/runtime/session.js';
import { withExtraOutputs } from '../../src/onnx/subgraph.js';
import { seededWeights } from '../support/buildModel.js';

/** A tiny forward graph written with the same builder the gradient pass uses. */
class Net {
  readonly b: GraphBuilder;
  private seed = 7;
  readonly params: { name: string; dims: number[] }[] = [];
  constructor(
    readonly opset: number,
    readonly inputDims: number[],
  ) {
    const empty = create(ModelProtoSchema, {
      irVersion: 8n,
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })],
      graph: create(GraphProtoSchema, { name: 'net', input: [valueInfo('x', inputDims)] }),
    });
    this.b = new GraphBuilder(new ModelEditor(empty));
  }
  param(dims: number[], scale = 0.5, offset = 0): string {
    const n = dims.reduce((a, d) => a * d, 1);
    const v = seededWeights(n, this.seed++).map((x) => x * scale + offset);
    return this.b.floats(v, dims);
  }
  op(type: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.b.op(type, inputs, attrs);
  }
  model(logits: string): ModelProto {
    this.b.editor.setOutputs([valueInfo(logits)]);
    return this.b.editor.model;
  }
}

/** A float value info; the first dim of an input is the symbolic batch. */
function valueInfo(name: string, dims?: number[]) {
  return floatValueInfo(name, DataType.FLOAT, dims?.map((d, i) => (i === 0 ? 'N' : d)));
}

const T = 2;
const W = 0.5;

/**
 * Compares every trainable's graph gradient with central finite differences of the same loss,
 * computed from the forward model's logits.
 */
async function checkGradients(model: ModelProto, batch: number, probes = 6, hint?: { tensor: string; dims: number[] }, kind: LossKind = 'softmax'): Promise<{ checked: number; worst: number }> {
  const { ort } = onnxruntime();
  const params = selectTrainables(model, new Set());
  const tg = buildTrainGraph(model, params, { batch, temperature: T, labelWeight: W, masked: new Set(), hints: hint ? [hint.tensor] : [], loss: kind });
  expect(tg.params.length).toBe(params.length);
  expect(tg.hints).toEqual(hint ? [hint.tensor] : []);
  const built = buildEvalGraph(model, params);
  const ev = { logits: built.logits, model: hint ? withExtraOutputs(built.model, [hint.tensor]) : built.model };
  const train = await sessionFromModel(tg.model);
  const evalSession = await sessionFromModel(ev.model);
  const xDims = [batch, ...(model.graph!.input[0].type!.value.value as { shape: { dim: { value: { value: bigint } }[] } }).shape.dim.slice(1).map((d) => Number(d.value.value))];
  const x = seededWeights(xDims.reduce((a, d) => a * d, 1), 99);
  const classes = tg.width;
  const raw = seededWeights(batch * classes, 5).map((v) => v * 3);
  const teacher = Float32Array.from(kind === 'softmax' ? softmaxRows(raw, batch, classes, T) : sigmoidValues(raw, T));
  const onehot = new Float32Array(batch * classes);
  if (kind === 'softmax') for (let r = 0; r < batch; r++) onehot[r * classes + ((r * 7) % classes)] = 1;
  else for (let i = 0; i < onehot.length; i++) onehot[i] = (i * 7) % 3 === 0 ? 1 : 0;
  const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
    x: new ort.Tensor('float32', x, xDims),
    [TEACHER_INPUT]: new ort.Tensor('float32', teacher, tg.targetDims),
    [LABEL_INPUT]: new ort.Tensor('float32', onehot, tg.targetDims),
  };
  const hintTarget = hint ? seededWeights(hint.dims.reduce((a, d) => a * d, 1), 31) : undefined;
  const HINT_SCALE = 0.3;
  if (hint) {
    feeds[hintInput(hint.tensor)] = new ort.Tensor('float32', hintTarget!, hint.dims);
    feeds[hintScale(hint.tensor)] = new ort.Tensor('float32', Float32Array.of(HINT_SCALE), [1]);
  }
  const paramFeeds = () => Object.fromEntries(params.map((p) => [p.name, new ort.Tensor('float32', p.values, p.dims)]));
  const result = await train.run({ ...feeds, ...paramFeeds() });
  const loss = async (): Promise<number> => {
    const out = await evalSession.run({ x: feeds.x, ...paramFeeds() });
    const z = out[ev.logits].data as Float32Array;
    let l = kind === 'softmax' ? distillLoss(z, teacher, onehot, batch, classes, T, W) : sigmoidDistillLoss(z, teacher, onehot, batch, T, W);
    if (hint) {
      // the feature term: scale / 2 * ||t - target||^2
      const t = out[hint.tensor].data as Float32Array;
      for (let i = 0; i < t.length; i++) l += (HINT_SCALE / 2) * (t[i] - hintTarget![i]) ** 2;
    }
    return l;
  };
  // the training graph's logits are the forward model's logits
  const fwd = await evalSession.run({ x: feeds.x, ...paramFeeds() });
  const same = Array.from(result[tg.logits].data as Float32Array);
  Array.from(fwd[ev.logits].data as Float32Array).forEach((v, i) => expect(same[i]).toBeCloseTo(v, 5));
  const errors: number[] = [];
  const misses: string[] = [];
  for (let k = 0; k < tg.params.length; k++) {
    const p = tg.params[k];
    const grad = result[tg.gradOutputs[k]].data as Float32Array;
    expect(grad.length).toBe(p.values.length);
    for (let j = 0; j < Math.min(probes, p.values.length); j++) {
      const i = Math.floor((j * p.values.length) / Math.min(probes, p.values.length));
      const h = 1e-3;
      const v = p.values[i];
      p.values[i] = v + h;
      const up = await loss();
      p.values[i] = v - h;
      const down = await loss();
      p.values[i] = v;
      const fd = (up - down) / (2 * h);
      errors.push(Math.abs(fd - grad[i]) / (1e-3 + Math.abs(fd)));
      if (errors.at(-1)! > 0.05) misses.push(`${p.name}[${i}]: graph gradient ${grad[i]} vs finite difference ${fd}`);
    }
  }
  // a finite difference that straddles a Relu/MaxPool/Clip kink is wrong, not the gradient: allow a
  // few such probes, while a wrong rule misses most of the entries it touches
  errors.sort((a, b) => a - b);
  const checked = errors.length;
  const worst = errors[Math.floor(checked * 0.9)];
  if (misses.length > checked * 0.1) throw new Error(`${misses.length} of ${checked} probes off:\n${misses.join('\n')}`);
  await train.release();
  await evalSession.release();
  console.log(`gradient check: ${checked} entries, 90th percentile relative error ${worst.toExponential(2)}, misses ${misses.length}`);
  return { checked, worst };
}

describe('distillation gradient rules match finite differences', () => {
  it('Conv (padded, grouped, depthwise, strided with uncovered rows), BatchNorm, Relu, MaxPool, Clip, Sigmoid, GAP, Flatten, Gemm', async () => {
    const n = new Net(13, [2, 2, 7, 7]);
    let h = n.op('Conv', ['x', n.param([4, 2, 3, 3]), n.param([4])], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] });
    h = n.op('BatchNormalization', [h, n.param([4], 0.3, 1), n.param([4], 0.2), n.param([4], 0.1), n.param([4], 0.2, 1)], { epsilon: { float: 1e-5 } });
    h = n.op('Relu', [h]);
    h = n.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] });
    // depthwise, stride 2 over 3x3 with pad 1 -> 2x2
    h = n.op('Conv', [h, n.param([4, 1, 3, 3])], { group: 4, strides: [2, 2], pads: [1, 1, 1, 1] });
    h = n.op('Clip', [h, n.b.scalar(-0.5), n.b.scalar(0.6)]);
    // grouped with 2 input channels per group
    h = n.op('Conv', [h, n.param([6, 2, 1, 1])], { group: 2 });
    h = n.op('Sigmoid', [h]);
    h = n.op('GlobalAveragePool', [h]);
    h = n.op('Flatten', [h], { axis: 1 });
    const logits = n.op('Gemm', [h, n.param([3, 6]), n.param([3])], { transB: 1 });
    const r = await checkGradients(n.model(logits), 3);
    expect(r.checked).toBeGreaterThan(30);
    expect(r.worst).toBeLessThan(0.03);
  });

  it('opset 9: the strided-Conv weight gradient is cut to the kernel with an attribute Slice (inputs only from opset 10)', async () => {
    const n = new Net(9, [2, 1, 6, 6]);
    // 6 - 3 = 3, /2 -> 2 outputs: row 5 is never read, so the full correlation is wider than the kernel
    const h = n.op('Conv', ['x', n.param([2, 1, 3, 3]), n.param([2])], { strides: [2, 2] });
    const flat = n.op('Flatten', [n.op('Tanh', [h])], { axis: 1 });
    const model = n.model(n.op('Gemm', [flat, n.param([3, 8]), n.param([3])], { transB: 1 }));
    const tg = buildTrainGraph(model, selectTrainables(model, new Set()), { batch: 3, temperature: T, labelWeight: W, masked: new Set() });
    const slices = tg.model.graph!.node.filter((node) => node.opType === 'Slice');
    expect(slices.map((node) => node.input.length)).toEqual([1]);
    const { checked, worst } = await checkGradients(model, 3);
    expect(checked).toBeGreaterThan(15);
    expect(worst).toBeLessThan(0.03);
  });

  it('strided Conv whose last input row is never read, dilation, Concat, Add/Mul/Sub/Div broadcasting, Tanh, LeakyRelu, Gemm with transA', async () => {
    const n = new Net(13, [2, 1, 6, 6]);
    // 6 + 0 - 3 = 3, /2 -> 2 outputs: row 5 is never read (output_padding 1)
    const a = n.op('Conv', ['x', n.param([2, 1, 3, 3])], { strides: [2, 2] });
    const d = n.op('Conv', ['x', n.param([3, 1, 2, 2])], { strides: [3, 3], dilations: [2, 2], pads: [0, 0, 1, 1] });
    let h = n.op('Concat', [a, d], { axis: 1 });
    h = n.op('Add', [h, n.param([5, 1, 1])]);
    h = n.op('Mul', [h, n.param([1, 5, 1, 2], 0.5, 1)]);
    h = n.op('Tanh', [h]);
    h = n.op('Sub', [n.param([2, 2]), h]);
    h = n.op('Div', [h, n.param([5, 1, 1], 0.2, 1.5)]);
    h = n.op('LeakyRelu', [h], { alpha: { float: 0.1 } });
    h = n.op('Reshape', [h, n.b.int64s([2, 20])]);
    h = n.op('Transpose', [h], { perm: [1, 0] });
    const logits = n.op('Gemm', [h, n.param([20, 4]), n.param([1, 4])], { transA: 1, alpha: { float: 0.7 }, beta: { float: 0.5 } });
    const r = await checkGradients(n.model(logits), 2);
    expect(r.checked).toBeGreaterThan(30);
    expect(r.worst).toBeLessThan(0.03);
  });

  it('a transformer block: patch Conv, Reshape, Transpose, LayerNormalization, MatMul (weights and activations), Softmax, Erf GELU, ReduceMean', async () => {
    const n = new Net(17, [2, 1, 4, 4]);
    let h = n.op('Conv', ['x', n.param([6, 1, 2, 2]), n.param([6])], { strides: [2, 2] });
    h = n.op('Reshape', [h, n.b.int64s([2, 6, 4])]);
    h = n.op('Transpose', [h], { perm: [0, 2, 1] });
    h = n.op('Add', [h, n.param([1, 4, 6])]);
    const ln = n.op('LayerNormalization', [h, n.param([6], 0.3, 1), n.param([6])], { axis: -1, epsilon: { float: 1e-5 } });
    const heads = (w: string) => n.op('Transpose', [n.op('Reshape', [n.op('Add', [n.param([6]), n.op('MatMul', [ln, w])]), n.b.int64s([2, 4, 2, 3])])], { perm: [0, 2, 1, 3] });
    const q = heads(n.param([6, 6]));
    const k = n.op('Transpose', [heads(n.param([6, 6]))], { perm: [0, 1, 3, 2] });
    const v = heads(n.param([6, 6]));
    let s = n.op('Div', [n.op('MatMul', [q, k]), n.b.scalar(1.7)]);
    s = n.op('Softmax', [s], { axis: -1 });
    let o = n.op('MatMul', [s, v]);
    o = n.op('Reshape', [n.op('Transpose', [o], { perm: [0, 2, 1, 3] }), n.b.int64s([2, 4, 6])]);
    h = n.op('Add', [h, n.op('MatMul', [o, n.param([6, 6])])]);
    const m = n.op('MatMul', [h, n.param([6, 8])]);
    const gelu = n.op('Mul', [n.op('Mul', [m, n.op('Add', [n.op('Erf', [n.op('Div', [m, n.b.scalar(Math.SQRT2)])]), n.b.scalar(1)])]), n.b.scalar(0.5)]);
    h = n.op('ReduceMean', [gelu], { axes: [1], keepdims: 0 });
    const logits = n.op('Gemm', [h, n.param([3, 8]), n.param([3])], { transB: 1 });
    const r = await checkGradients(n.model(logits), 2, 4);
    expect(r.checked).toBeGreaterThan(30);
    expect(r.worst).toBeLessThan(0.03);
  });

  it('opset 11: flattening Softmax and ReduceSum with attribute axes, LogSoftmax, a final Softmax taken off the loss', async () => {
    const n = new Net(11, [3, 2, 3]);
    let h = n.op('MatMul', ['x', n.param([3, 4])]);
    h = n.op('Softmax', [h], { axis: 1 });
    h = n.op('ReduceSum', [h], { axes: [1], keepdims: 0 });
    h = n.op('LogSoftmax', [n.op('Add', [h, n.param([4])])], { axis: 1 });
    h = n.op('Gemm', [h, n.param([4, 3])]);
    const out = n.op('Softmax', [h], { axis: 1 });
    const r = await checkGradients(n.model(out), 3);
    expect(r.checked).toBeGreaterThan(15);
  });

  it('an L2-normalised embedding as exported: ReduceL2, Clip, Expand back to the features, Div', async () => {
    const n = new Net(13, [3, 6]);
    const h = n.op('Gemm', ['x', n.param([6, 5]), n.param([5])]);
    const norm = n.op('Clip', [n.op('ReduceL2', [h], { axes: [1], keepdims: 1 }), n.b.scalar(1e-6)]);
    const e = n.op('Div', [h, n.op('Expand', [norm, n.b.int64s([1, 5])])]);
    const logits = n.op('Gemm', [e, n.param([5, 4], 2)]);
    const r = await checkGradients(n.model(logits), 3, 8);
    expect(r.checked).toBeGreaterThan(15);
    expect(r.worst).toBeLessThan(0.03);
  });

  it('the feature-distillation term on an intermediate tensor', async () => {
    const n = new Net(13, [2, 5]);
    const hidden = n.op('Gemm', ['x', n.param([5, 4]), n.param([4])]);
    const logits = n.op('Gemm', [n.op('Tanh', [hidden]), n.param([4, 3])]);
    const r = await checkGradients(n.model(logits), 3, 6, { tensor: hidden, dims: [3, 4] });
    expect(r.checked).toBeGreaterThan(15);
    expect(r.worst).toBeLessThan(0.03);
  });

  it('opset 20 Gelu', async () => {
    const n = new Net(20, [2, 5]);
    const h = n.op('Gelu', [n.op('Gemm', ['x', n.param([5, 4]), n.param([4])])]);
    const r = await checkGradients(n.model(n.op('Gemm', [h, n.param([4, 3])])), 4);
    expect(r.checked).toBeGreaterThan(10);
  });

  for (const opset of [7, 10]) {
    it(`opset ${opset}, written without Where, Expand, ConstantOfShape, ScatterElements or a two-input Gemm: Conv, Relu, LeakyRelu, Clip, MaxPool tiling a padded and a cropped input, GAP, ReduceMean, Gemm`, async () => {
      const n = new Net(opset, [2, 2, 7, 7]);
      let h = n.op('Conv', ['x', n.param([4, 2, 3, 3]), n.param([4])], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] });
      h = n.op('Relu', [h]);
      // 7 + 1 pad = 8 = 4 windows of 2
      h = n.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 0, 0] });
      h = n.op('LeakyRelu', [n.op('Conv', [h, n.param([4, 4, 1, 1]), n.param([4])])], { alpha: { float: 0.1 } });
      h = n.op('Clip', [h], { min: { float: -0.4 }, max: { float: 0.7 } });
      // 4 = 1 window of 3 and a row no window reads
      const pooled = n.op('MaxPool', [h], { kernel_shape: [3, 3], strides: [3, 3] });
      const mean = n.op('ReduceMean', [h], { axes: [2, 3], keepdims: 0 });
      const g = n.op('Flatten', [n.op('GlobalAveragePool', [pooled])], { axis: 1 });
      const logits = n.op('Gemm', [n.op('Concat', [g, mean], { axis: 1 }), n.param([3, 8]), n.param([3])], { transB: 1 });
      const model = n.model(logits);
      const nodes = buildTrainGraph(model, selectTrainables(model, new Set()), { batch: 2, temperature: T, labelWeight: W, masked: new Set() }).model.graph!.node;
      // the opset each op first appears in
      const since: Record<string, number> = { Where: 9, Expand: 8, ConstantOfShape: 9, ScatterElements: 11 };
      for (const node of nodes) {
        expect(since[node.opType] ?? 1, `${node.opType} at opset ${opset}`).toBeLessThanOrEqual(opset);
        if (node.opType === 'Gemm' && opset < 11) expect(node.input).toHaveLength(3);
      }
      const r = await checkGradients(model, 2);
      expect(r.checked).toBeGreaterThan(25);
      expect(r.worst).toBeLessThan(0.03);
    });
  }

  it('the sigmoid loss of a binary [N,1] and a multi-label [N,K] head', async () => {
    for (const k of [1, 3]) {
      const n = new Net(13, [2, 5]);
      const h = n.op('Tanh', [n.op('Gemm', ['x', n.param([5, 4]), n.param([4])])]);
      const r = await checkGradients(n.model(n.op('Gemm', [h, n.param([4, k]), n.param([k])])), 3, 6, undefined, 'sigmoid');
      expect(r.checked).toBeGreaterThanOrEqual(14);
      expect(r.worst).toBeLessThan(0.03);
    }
  });

  it('trains a weight shared through Identity into an elementwise Add, judged by the weight\'s own size', () => {
    const n = new Net(13, [2, 5]);
    const bias = n.param([4]);
    const shared = n.op('Identity', [bias]);
    const h = n.op('Add', [n.op('MatMul', ['x', n.param([5, 4])]), shared]);
    const model = n.model(n.op('Gemm', [h, n.param([4, 3])]));
    const names = selectTrainables(model, new Set()).map((p) => p.name);
    expect(names).toContain(bias);
    expect(names).toHaveLength(3);
  });

  it('refuses an op it has no rule for, by name', () => {
    const n = new Net(13, [2, 5]);
    const h = n.op('Softplus', [n.op('Gemm', ['x', n.param([5, 4])])]);
    const model = n.model(n.op('Gemm', [h, n.param([4, 3])]));
    const params = selectTrainables(model, new Set());
    expect(() => buildTrainGraph(model, params, { batch: 2, temperature: 1, labelWeight: 0, masked: new Set() })).toThrow(UnsupportedOp);
    expect(() => buildTrainGraph(model, params, { batch: 2, temperature: 1, labelWeight: 0, masked: new Set() })).toThrow(/Softplus/);
  });
});
