import { attr, attrFloat, attrInt, attrInts, attrString } from '../../onnx/graph.js';
import type { NodeProto } from '../../onnx/proto/onnx_pb.js';
import { makeFloatTensor, numel } from '../../onnx/tensor.js';
import type { AttrValue, GraphBuilder } from './builder.js';

/** An op (or an op's configuration) the gradient builder has no rule for. */
export class UnsupportedOp extends Error {
  constructor(
    readonly opType: string,
    readonly node: string,
    detail = '',
  ) {
    super(`${opType} node '${node}'${detail ? ` (${detail})` : ''}`);
  }
}

export interface GradContext {
  b: GraphBuilder;
  /** the node as it sits in the training graph; a rule may add outputs it needs (MaxPool indices) */
  node: NodeProto;
  /** the summed gradient of each output, undefined when that output does not reach the loss */
  dy: readonly (string | undefined)[];
  /** whether each input needs a gradient */
  wants: readonly boolean[];
  shape(tensor: string): number[];
  /** values of a constant float tensor (initializer or Constant), for BatchNorm statistics */
  floats(tensor: string): Float32Array | undefined;
  /** values of a constant integer tensor, for axes given as inputs */
  ints(tensor: string): number[] | undefined;
}

/** One gradient per input (undefined: none needed or none exists). */
export type GradRule = (c: GradContext) => (string | undefined)[];

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => i + from);
const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

function unsupported(c: GradContext, detail: string): never {
  throw new UnsupportedOp(c.node.opType, c.node.name || c.node.output[0], detail);
}

/** Ops whose outputs carry no gradient (shape arithmetic, comparisons, constants). */
export const NON_DIFFERENTIABLE: ReadonlySet<string> = new Set([
  'Shape', 'Size', 'Constant', 'ConstantOfShape', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or',
  'Xor', 'ArgMax', 'ArgMin', 'NonZero', 'Range', 'EyeLike', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike',
  'Floor', 'Ceil', 'Round', 'Sign', 'IsNaN', 'IsInf',
]);

/** Explicit begin/end pads of a Conv or pool, resolving auto_pad from the known shapes. */
function explicitPads(node: NodeProto, xs: number[], ys: number[], kernel: number[], strides: number[], dil: number[]): number[] {
  const r = kernel.length;
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') return attrInts(node, 'pads') ?? new Array(2 * r).fill(0);
  if (autoPad === 'VALID') return new Array(2 * r).fill(0);
  const pads = new Array(2 * r).fill(0);
  for (let i = 0; i < r; i++) {
    const total = Math.max(0, (ys[2 + i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - xs[2 + i]);
    const small = Math.floor(total / 2);
    pads[i] = autoPad === 'SAME_LOWER' ? total - small : small;
    pads[r + i] = total - pads[i];
  }
  return pads;
}

const conv: GradRule = (c) => {
  const { b, node } = c;
  const [x, w, bias] = node.input;
  const dy = c.dy[0]!;
  const xs = c.shape(x);
  const ws = c.shape(w);
  const ys = c.shape(node.output[0]);
  const r = xs.length - 2;
  const kernel = ws.slice(2);
  const strides = attrInts(node, 'strides') ?? new Array(r).fill(1);
  const dil = attrInts(node, 'dilations') ?? new Array(r).fill(1);
  const group = attrInt(node, 'group', 1);
  const pads = explicitPads(node, xs, ys, kernel, strides, dil);
  const spatial = range(r, 2);
  const out: (string | undefined)[] = [];
  if (c.wants[0]) {
    // the transpose of a strided conv can leave trailing input rows uncovered: output_padding restores them
    const outputPadding = range(r).map((i) => xs[2 + i] - ((ys[2 + i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - pads[i] - pads[r + i]));
    if (outputPadding.some((p, i) => p < 0 || p >= Math.max(strides[i], dil[i]))) unsupported(c, 'input rows the convolution never reads');
    out[0] = b.op('ConvTranspose', [dy, w], { strides, dilations: dil, group, pads, output_padding: outputPadding, kernel_shape: kernel });
  }
  if (c.wants[1]) {
    // dW[o,c,k] = sum_{n,p} dY[n,o,p] X[n,c,p*s+k*d]: a convolution of X (channels as the batch)
    // with dY (samples as the channels), strides and dilations swapped
    const n = xs[0];
    const [o, cg] = ws;
    const full = range(r).map((i) => Math.floor((xs[2 + i] + pads[i] + pads[r + i] - ((ys[2 + i] - 1) * strides[i] + 1)) / dil[i]) + 1);
    let g: string;
    if (group === 1) {
      const xt = b.transpose(x, [1, 0, ...spatial]);
      const dt = b.transpose(dy, [1, 0, ...spatial]);
      g = b.op('Conv', [xt, dt], { strides: dil, dilations: strides, pads });
    } else {
      // grouped: each (sample, group) pair is its own group, so a group's input channels only meet
      // its own output channels; the per-sample results are summed after
      const xg = b.reshape(x, [n, group, cg, ...xs.slice(2)]);
      const xt = b.reshape(b.transpose(xg, [2, 0, 1, ...range(r, 3)]), [cg, n * group, ...xs.slice(2)]);
      const dr = b.reshape(dy, [n * o, 1, ...ys.slice(2)]);
      const per = b.op('Conv', [xt, dr], { strides: dil, dilations: strides, pads, group: n * group });
      g = b.reduceSum(b.reshape(per, [cg, n, o, ...full]), [1], false);
    }
    if (!same(full, kernel)) g = b.slice(g, new Array(r).fill(0), kernel, spatial);
    out[1] = b.transpose(g, [1, 0, ...spatial]);
  }
  if (bias && c.wants[2]) out[2] = b.reduceSum(dy, [0, ...spatial], false);
  return out;
};

const gemm: GradRule = (c) => {
  const { b, node } = c;
  const [a, bb, cc] = node.input;
  const dy = c.dy[0]!;
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  const tA = attrInt(node, 'transA', 0);
  const tB = attrInt(node, 'transB', 0);
  const al: Record<string, AttrValue> = alpha === 1 ? {} : { alpha: { float: alpha } };
  const out: (string | undefined)[] = [];
  if (c.wants[0]) out[0] = tA ? b.gemm(bb, dy, { transA: tB, transB: 1, ...al }) : b.gemm(dy, bb, { transB: tB ? 0 : 1, ...al });
  if (c.wants[1]) out[1] = tB ? b.gemm(dy, a, { transA: 1, transB: tA, ...al }) : b.gemm(a, dy, { transA: tA ? 0 : 1, ...al });
  if (cc && c.wants[2]) out[2] = b.unbroadcast(b.scale(dy, beta), c.shape(node.output[0]), c.shape(cc));
  return out;
};

const matmul: GradRule = (c) => {
  const { b, node } = c;
  const [a, bb] = node.input;
  const dy = c.dy[0]!;
  const as = c.shape(a);
  const bs = c.shape(bb);
  const ys = c.shape(node.output[0]);
  if (as.length < 2 || bs.length < 2) unsupported(c, '1-D operand');
  const swap = (rank: number) => [...range(rank - 2), rank - 1, rank - 2];
  const out: (string | undefined)[] = [];
  if (c.wants[0]) {
    const full = b.op('MatMul', [dy, b.transpose(bb, swap(bs.length))]);
    out[0] = b.unbroadcast(full, [...ys.slice(0, -2), as.at(-2)!, as.at(-1)!], as);
  }
  if (c.wants[1]) {
    if (bs.length === 2) {
      // a weight matrix: fold every batch axis into rows, one Gemm instead of a batched product and a sum
      const k = as.at(-1)!;
      const a2 = b.reshape(a, [numel(as) / k, k]);
      const d2 = b.reshape(dy, [numel(ys) / ys.at(-1)!, ys.at(-1)!]);
      out[1] = b.gemm(a2, d2, { transA: 1 });
    } else {
      const full = b.op('MatMul', [b.transpose(a, swap(as.length)), dy]);
      out[1] = b.unbroadcast(full, [...ys.slice(0, -2), bs.at(-2)!, bs.at(-1)!], bs);
    }
  }
  return out;
};

const addSub =
  (sign: number): GradRule =>
  (c) => {
    const { b, node } = c;
    const ys = c.shape(node.output[0]);
    const dy = c.dy[0]!;
    return node.input.map((t, i) => (c.wants[i] ? b.unbroadcast(i === 1 ? b.scale(dy, sign) : dy, ys, c.shape(t)) : undefined));
  };

const mul: GradRule = (c) => {
  const { b, node } = c;
  const [x, y] = node.input;
  const ys = c.shape(node.output[0]);
  const dy = c.dy[0]!;
  return [c.wants[0] ? b.unbroadcast(b.mul(dy, y), ys, c.shape(x)) : undefined, c.wants[1] ? b.unbroadcast(b.mul(dy, x), ys, c.shape(y)) : undefined];
};

const div: GradRule = (c) => {
  const { b, node } = c;
  const [x, y] = node.input;
  const ys = c.shape(node.output[0]);
  const dy = c.dy[0]!;
  return [
    c.wants[0] ? b.unbroadcast(b.op('Div', [dy, y]), ys, c.shape(x)) : undefined,
    c.wants[1] ? b.unbroadcast(b.op('Neg', [b.op('Div', [b.mul(dy, node.output[0]), y])]), ys, c.shape(y)) : undefined,
  ];
};

const passThrough: GradRule = (c) => [c.dy[0]];

const reshapeBack: GradRule = (c) => [c.b.reshape(c.dy[0]!, c.shape(c.node.input[0]))];

const relu: GradRule = (c) => {
  const { b, node } = c;
  const zero = b.scalar(0);
  return [b.op('Where', [b.op('Greater', [node.input[0], zero]), c.dy[0]!, zero])];
};

const leakyRelu: GradRule = (c) => {
  const { b, node } = c;
  const dy = c.dy[0]!;
  return [b.op('Where', [b.op('Greater', [node.input[0], b.scalar(0)]), dy, b.scale(dy, attrFloat(node, 'alpha', 0.01))])];
};

const clip: GradRule = (c) => {
  const { b, node } = c;
  const x = node.input[0];
  let lo: string | undefined;
  let hi: string | undefined;
  if (attr(node, 'min') || attr(node, 'max')) {
    lo = attr(node, 'min') ? b.scalar(attrFloat(node, 'min', 0)) : undefined;
    hi = attr(node, 'max') ? b.scalar(attrFloat(node, 'max', 0)) : undefined;
  } else {
    lo = node.input[1] || undefined;
    hi = node.input[2] || undefined;
  }
  const conds = [lo && b.op('Greater', [x, lo]), hi && b.op('Less', [x, hi])].filter((s): s is string => !!s);
  if (conds.length === 0) return [c.dy[0]];
  const mask = conds.length === 2 ? b.op('And', conds) : conds[0];
  return [b.op('Where', [mask, c.dy[0]!, b.scalar(0)])];
};

const sigmoid: GradRule = (c) => {
  const { b, node } = c;
  const y = node.output[0];
  return [b.mul(c.dy[0]!, b.mul(y, b.sub(b.scalar(1), y)))];
};

const tanh: GradRule = (c) => {
  const { b, node } = c;
  const y = node.output[0];
  return [b.mul(c.dy[0]!, b.sub(b.scalar(1), b.mul(y, y)))];
};

const erf: GradRule = (c) => {
  const { b, node } = c;
  const x = node.input[0];
  return [b.mul(c.dy[0]!, b.scale(b.op('Exp', [b.op('Neg', [b.mul(x, x)])]), 2 / Math.sqrt(Math.PI)))];
};

const gelu: GradRule = (c) => {
  const { b, node } = c;
  if (attrString(node, 'approximate', 'none') !== 'none') unsupported(c, "approximate='tanh'");
  const x = node.input[0];
  const cdf = b.scale(b.add(b.op('Erf', [b.scale(x, Math.SQRT1_2)]), b.scalar(1)), 0.5);
  const pdf = b.scale(b.op('Exp', [b.scale(b.mul(x, x), -0.5)]), 1 / Math.sqrt(2 * Math.PI));
  return [b.mul(c.dy[0]!, b.add(cdf, b.mul(x, pdf)))];
};

/** Axes a Softmax/LogSoftmax normalises over: one axis from opset 13, the flattened tail before. */
function softmaxAxes(c: GradContext, rank: number): number[] {
  const opset = c.b.opset;
  let axis = attrInt(c.node, 'axis', opset >= 13 ? -1 : 1);
  if (axis < 0) axis += rank;
  return opset >= 13 ? [axis] : range(rank - axis, axis);
}

const softmax: GradRule = (c) => {
  const { b, node } = c;
  const y = node.output[0];
  const dy = c.dy[0]!;
  const axes = softmaxAxes(c, c.shape(y).length);
  return [b.mul(y, b.sub(dy, b.reduceSum(b.mul(dy, y), axes, true)))];
};

const logSoftmax: GradRule = (c) => {
  const { b, node } = c;
  const y = node.output[0];
  const dy = c.dy[0]!;
  const axes = softmaxAxes(c, c.shape(y).length);
  return [b.sub(dy, b.mul(b.op('Exp', [y]), b.reduceSum(dy, axes, true)))];
};

const transpose: GradRule = (c) => {
  const rank = c.shape(c.node.input[0]).length;
  const perm = attrInts(c.node, 'perm') ?? range(rank).reverse();
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => (inverse[p] = i));
  return [c.b.transpose(c.dy[0]!, inverse)];
};

const concat: GradRule = (c) => {
  const { b, node } = c;
  const rank = c.shape(node.output[0]).length;
  let axis = attrInt(node, 'axis', 0);
  if (axis < 0) axis += rank;
  let offset = 0;
  return node.input.map((t, i) => {
    const size = c.shape(t)[axis];
    const start = offset;
    offset += size;
    return c.wants[i] ? b.slice(c.dy[0]!, [start], [start + size], [axis]) : undefined;
  });
};

const reduce =
  (mean: boolean): GradRule =>
  (c) => {
    const { b, node } = c;
    const xs = c.shape(node.input[0]);
    const axesFromInput = mean ? b.opset >= 18 : b.opset >= 13;
    let axes = axesFromInput ? (node.input[1] ? c.ints(node.input[1]) : []) : attrInts(node, 'axes');
    if (axes === undefined && axesFromInput) unsupported(c, 'axes not constant');
    if (!axes || axes.length === 0) {
      if (attrInt(node, 'noop_with_empty_axes', 0)) return [c.dy[0]];
      axes = range(xs.length);
    }
    const norm = axes.map((a) => (a < 0 ? a + xs.length : a));
    const kept = xs.map((d, i) => (norm.includes(i) ? 1 : d));
    const n = norm.reduce((a, i) => a * xs[i], 1);
    const g = b.op('Expand', [b.reshape(c.dy[0]!, kept), b.int64s(xs)]);
    return [mean ? b.scale(g, 1 / n) : g];
  };

const globalAveragePool: GradRule = (c) => {
  const { b, node } = c;
  const xs = c.shape(node.input[0]);
  const n = numel(xs.slice(2));
  return [b.scale(b.op('Expand', [c.dy[0]!, b.int64s(xs)]), 1 / n)];
};

const maxPool: GradRule = (c) => {
  const { b, node } = c;
  const xs = c.shape(node.input[0]);
  const kernel = attrInts(node, 'kernel_shape')!;
  const r = kernel.length;
  const strides = attrInts(node, 'strides') ?? new Array(r).fill(1);
  const dil = attrInts(node, 'dilations') ?? new Array(r).fill(1);
  if (attrInt(node, 'storage_order', 0) !== 0) unsupported(c, 'storage_order=1');
  const overlapping = kernel.some((k, i) => (k - 1) * dil[i] + 1 > strides[i]);
  if (overlapping && b.opset < 16) unsupported(c, 'overlapping windows need ScatterElements reduction, opset 16+');
  // the Indices output (flat positions over the whole input tensor) routes each gradient to its argmax
  if (!node.output[1]) b.editor.setOutput(node, 1, b.fresh('maxpool_indices'));
  const zeros = b.op('ConstantOfShape', [b.int64s([numel(xs)])], { value: { tensor: zeroTensor() } });
  const scatter = b.op('ScatterElements', [zeros, b.reshape(node.output[1], [-1]), b.reshape(c.dy[0]!, [-1])], overlapping ? { axis: 0, reduction: 'add' } : { axis: 0 });
  return [b.reshape(scatter, xs)];
};

/** A one-element float zero, the fill value of ConstantOfShape. */
function zeroTensor() {
  return makeFloatTensor('zero', [1], new Float32Array(1));
}

/** Per-channel view [1, C, 1, ...] of a [C] vector for a rank-`rank` NC... tensor. */
function channelDims(channels: number, rank: number): number[] {
  return [1, channels, ...new Array(rank - 2).fill(1)];
}

/** Inference-mode BatchNorm, y = (x - mean) / sqrt(var + eps) * scale + bias, statistics held fixed. */
const batchNorm: GradRule = (c) => {
  const { b, node } = c;
  if (attrInt(node, 'training_mode', 0) !== 0) unsupported(c, 'training_mode=1');
  const [x, scale, , meanName, varName] = node.input;
  const xs = c.shape(x);
  const ch = xs[1];
  const mean = c.floats(meanName);
  const variance = c.floats(varName);
  if (!mean || !variance) unsupported(c, 'running statistics are not constants');
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const inv = variance.map((v) => 1 / Math.sqrt(v + eps));
  const cd = channelDims(ch, xs.length);
  const invC = b.floats(inv, cd);
  const dy = c.dy[0]!;
  const axes = [0, ...range(xs.length - 2, 2)];
  const out: (string | undefined)[] = [];
  if (c.wants[0]) out[0] = b.mul(dy, b.mul(b.reshape(scale, cd), invC));
  if (c.wants[1]) {
    const xhat = b.mul(b.sub(x, b.floats(mean, cd)), invC);
    out[1] = b.reduceSum(b.mul(dy, xhat), axes, false);
  }
  if (c.wants[2]) out[2] = b.reduceSum(dy, axes, false);
  return out;
};

const layerNorm: GradRule = (c) => {
  const { b, node } = c;
  if (c.dy.slice(1).some((d) => d !== undefined)) unsupported(c, 'Mean/InvStdDev outputs used downstream');
  const [x, scale, bias] = node.input;
  const xs = c.shape(x);
  let axis = attrInt(node, 'axis', -1);
  if (axis < 0) axis += xs.length;
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const axes = range(xs.length - axis, axis);
  const dy = c.dy[0]!;
  const mu = b.reduceMeanKeep(x, axes, xs);
  const xc = b.sub(x, mu);
  const rstd = b.op('Reciprocal', [b.op('Sqrt', [b.add(b.reduceMeanKeep(b.mul(xc, xc), axes, xs), b.scalar(eps))])]);
  const xhat = b.mul(xc, rstd);
  const out: (string | undefined)[] = [];
  if (c.wants[0]) {
    const g = b.mul(dy, scale);
    const mg = b.reduceMeanKeep(g, axes, xs);
    const mgx = b.reduceMeanKeep(b.mul(g, xhat), axes, xs);
    out[0] = b.mul(rstd, b.sub(b.sub(g, mg), b.mul(xhat, mgx)));
  }
  if (c.wants[1]) out[1] = b.unbroadcast(b.mul(dy, xhat), xs, c.shape(scale));
  if (bias && c.wants[2]) out[2] = b.unbroadcast(dy, xs, c.shape(bias));
  return out;
};

const cast: GradRule = (c) => (attrInt(c.node, 'to', 0) === 1 ? [c.dy[0]] : [undefined]);

/** The ops distillation can differentiate, by op type. */
export const GRAD_RULES: Readonly<Record<string, GradRule>> = {
  Conv: conv,
  Gemm: gemm,
  MatMul: matmul,
  Add: addSub(1),
  Sub: addSub(-1),
  Mul: mul,
  Div: div,
  Relu: relu,
  LeakyRelu: leakyRelu,
  Clip: clip,
  Sigmoid: sigmoid,
  Tanh: tanh,
  Erf: erf,
  Gelu: gelu,
  Softmax: softmax,
  LogSoftmax: logSoftmax,
  Identity: passThrough,
  Dropout: passThrough,
  Cast: cast,
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: transpose,
  Concat: concat,
  ReduceMean: reduce(true),
  ReduceSum: reduce(false),
  GlobalAveragePool: globalAveragePool,
  MaxPool: maxPool,
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
};
