import type { NodeProto, ValueInfoProto } from './proto/onnx_pb.js';
import { parseEinsum, einsumShape } from './einsum.js';
import { GraphIndex, attr, attrInt, attrInts, attrString } from './graph.js';
import { tensorDims, tensorToInts, numel } from './tensor.js';

/**
 * Concrete shapes of every tensor we can infer, with symbolic dims (the batch) set to `batch`. Small
 * integer tensors (shape arithmetic: Shape -> Gather -> Concat -> Reshape, as exporters write for a
 * dynamic batch) are evaluated too, so Reshape targets resolve. Unknown ops leave their outputs unknown;
 * callers treat an unknown shape as "cannot say", never guess.
 */
export interface ShapeInfo {
  shapes: Map<string, number[]>;
  /** values of small int tensors */
  values: Map<string, number[]>;
}

const ELEMENTWISE_UNARY = new Set([
  'Identity', 'Relu', 'LeakyRelu', 'PRelu', 'Sigmoid', 'Tanh', 'Clip', 'Gelu', 'Erf', 'Sqrt', 'Exp', 'Log', 'Neg', 'Abs',
  'Softmax', 'LogSoftmax', 'Dropout', 'BatchNormalization', 'LayerNormalization', 'InstanceNormalization', 'Cast',
  'HardSigmoid', 'HardSwish', 'Elu', 'Selu', 'Softplus', 'Mish', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Not',
  'LpNormalization', 'CastLike', 'Celu', 'ThresholdedRelu', 'Sign', 'Sin', 'Cos', 'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Where', 'Equal', 'Less', 'Greater', 'And', 'Or', 'Mod', 'LessOrEqual', 'GreaterOrEqual', 'Expand']);

export function dimsOf(v: ValueInfoProto | undefined, batch: number): number[] | undefined {
  const t = v?.type?.value;
  if (!t || t.case !== 'tensorType' || !t.value.shape) return undefined;
  return t.value.shape.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : batch));
}

export function broadcastShapes(shapes: number[][]): number[] | undefined {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - rank + i] ?? 1;
      if (v === 1) continue;
      if (d !== 1 && d !== v) return undefined;
      d = v;
    }
    out.push(d);
  }
  return out;
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

export function inferShapes(index: GraphIndex, batch = 1): ShapeInfo {
  const shapes = new Map<string, number[]>();
  const values = new Map<string, number[]>();
  for (const v of index.inputs) {
    const d = dimsOf(v, batch);
    if (d) shapes.set(v.name, d);
  }
  for (const [name, t] of index.initializers) {
    const d = tensorDims(t);
    shapes.set(name, d);
    if (numel(d) <= 64 && (t.dataType === 7 || t.dataType === 6)) values.set(name, tensorToInts(t));
  }
  for (const node of index.order) {
    try {
      inferNode(node, shapes, values);
    } catch {
      // an op we cannot follow leaves its outputs unknown
    }
    // value_info from the exporter fills what we could not infer
    for (const o of node.output) {
      if (!shapes.has(o)) {
        const d = dimsOf(index.valueInfo.get(o), batch);
        if (d) shapes.set(o, d);
      }
    }
  }
  return { shapes, values };
}

function convOutput(node: NodeProto, x: number[], w: number[], transpose: boolean): number[] | undefined {
  const spatial = x.length - 2;
  const kernel = attrInts(node, 'kernel_shape') ?? w.slice(2);
  const strides = attrInts(node, 'strides') ?? new Array(spatial).fill(1);
  const dil = attrInts(node, 'dilations') ?? new Array(spatial).fill(1);
  const pads = attrInts(node, 'pads') ?? new Array(2 * spatial).fill(0);
  const autoPad = attr(node, 'auto_pad');
  const mode = autoPad ? new TextDecoder().decode(autoPad.s) : 'NOTSET';
  const out: number[] = [];
  for (let i = 0; i < spatial; i++) {
    const inDim = x[2 + i];
    const k = (kernel[i] - 1) * dil[i] + 1;
    if (transpose) {
      const outPad = attrInts(node, 'output_padding')?.[i] ?? 0;
      const explicit = attrInts(node, 'output_shape');
      out.push(explicit ? explicit[i] : strides[i] * (inDim - 1) + outPad + k - pads[i] - pads[i + spatial]);
    } else if (mode === 'SAME_UPPER' || mode === 'SAME_LOWER') {
      out.push(Math.ceil(inDim / strides[i]));
    } else if (mode === 'VALID') {
      out.push(Math.floor((inDim - k) / strides[i]) + 1);
    } else {
      const ceil = attrInt(node, 'ceil_mode', 0) === 1;
      const r = (inDim + pads[i] + pads[i + spatial] - k) / strides[i];
      out.push((ceil ? Math.ceil(r) : Math.floor(r)) + 1);
    }
  }
  return out;
}

function inferNode(node: NodeProto, shapes: Map<string, number[]>, values: Map<string, number[]>): void {
  const s = (i: number) => (node.input[i] ? shapes.get(node.input[i]) : undefined);
  const v = (i: number) => (node.input[i] ? values.get(node.input[i]) : undefined);
  const set = (shape: number[] | undefined, value?: number[]) => {
    if (!shape) return;
    shapes.set(node.output[0], shape);
    if (value) values.set(node.output[0], value);
  };
  const x = s(0);
  const op = node.opType;
  if (op === 'Constant') {
    const t = attr(node, 'value')?.t;
    if (t) {
      const d = tensorDims(t);
      set(d, numel(d) <= 64 && (t.dataType === 7 || t.dataType === 6) ? tensorToInts(t) : undefined);
    }
    return;
  }
  if (op === 'Shape') {
    if (x) {
      const start = normAxis(attrInt(node, 'start', 0), x.length);
      const end = attr(node, 'end') ? normAxis(attrInt(node, 'end', x.length), x.length) : x.length;
      const val = x.slice(start, end);
      set([val.length], val);
    }
    return;
  }
  if (ELEMENTWISE_UNARY.has(op)) {
    const vx = v(0);
    set(x, op === 'Cast' || op === 'Identity' ? vx : undefined);
    // Dropout and BatchNormalization (training) may list extra outputs we never read
    return;
  }
  if (op === 'ConstantOfShape') {
    // torch writes expand(n, -1, -1) as Where(Equal(shape, -1 * ConstantOfShape(...)), ones, shape):
    // following the values is what lets Expand (a ViT's class token) get a concrete shape
    const dims = v(0);
    if (!dims) return;
    const t = attr(node, 'value')?.t;
    const fill = t ? tensorToInts(t)[0] : 0;
    set(dims, numel(dims) <= 64 && (!t || t.dataType === 7 || t.dataType === 6) ? new Array(numel(dims)).fill(fill) : undefined);
    return;
  }
  if (op === 'Where') {
    const ins = node.input.map((n) => shapes.get(n));
    if (ins.some((i) => !i)) return;
    const out = broadcastShapes(ins as number[][]);
    const [c, a, b] = [v(0), v(1), v(2)];
    const n = out && out.length <= 1 ? numel(out) : 0;
    const at = (q: number[], i: number) => q[q.length === 1 ? 0 : i];
    set(out, c && a && b && n > 0 ? Array.from({ length: n }, (_, i) => (at(c, i) ? at(a, i) : at(b, i))) : undefined);
    return;
  }
  if (BROADCAST.has(op)) {
    const ins = node.input.map((n) => shapes.get(n));
    if (ins.some((i) => !i)) return;
    if (op === 'Expand') {
      const target = v(1);
      set(target && x ? broadcastShapes([x, target]) : undefined);
      return;
    }
    const out = broadcastShapes(ins as number[][]);
    let val: number[] | undefined;
    const a = v(0);
    const b = v(1);
    if (a && b && node.input.length === 2 && out && out.length <= 1) {
      const n = Math.max(a.length, b.length);
      const f = { Add: (p: number, q: number) => p + q, Sub: (p: number, q: number) => p - q, Mul: (p: number, q: number) => p * q, Div: (p: number, q: number) => Math.trunc(p / q), Equal: (p: number, q: number) => (p === q ? 1 : 0) }[op as 'Add'];
      if (f) val = Array.from({ length: n }, (_, i) => f(a[a.length === 1 ? 0 : i], b[b.length === 1 ? 0 : i]));
    }
    set(out, val);
    return;
  }
  switch (op) {
    case 'Conv':
    case 'ConvInteger':
    case 'ConvTranspose': {
      const w = s(1);
      if (!x || !w) return;
      const group = attrInt(node, 'group', 1);
      const cout = op === 'ConvTranspose' ? w[1] * group : w[0];
      const sp = convOutput(node, x, w, op === 'ConvTranspose');
      set(sp && [x[0], cout, ...sp]);
      return;
    }
    case 'MaxPool':
    case 'AveragePool':
    case 'LpPool': {
      if (!x) return;
      const kernel = attrInts(node, 'kernel_shape');
      if (!kernel) return;
      const sp = convOutput(node, x, [0, 0, ...kernel], false);
      set(sp && [x[0], x[1], ...sp]);
      return;
    }
    case 'GlobalAveragePool':
    case 'GlobalMaxPool':
      set(x && [x[0], x[1], ...x.slice(2).map(() => 1)]);
      return;
    case 'Flatten': {
      if (!x) return;
      const axis = normAxis(attrInt(node, 'axis', 1), x.length);
      set([numel(x.slice(0, axis)), numel(x.slice(axis))]);
      return;
    }
    case 'Reshape': {
      const target = v(1) ?? attrInts(node, 'shape');
      if (!x || !target) return;
      const allowZero = attrInt(node, 'allowzero', 0) === 1;
      const out = target.map((d, i) => (d === 0 && !allowZero ? x[i] : d));
      const known = out.filter((d) => d !== -1);
      const inferred = out.indexOf(-1);
      if (inferred >= 0) out[inferred] = numel(x) / numel(known);
      set(out, v(0));
      return;
    }
    case 'Gemm': {
      const w = s(1);
      if (!x || !w) return;
      const m = attrInt(node, 'transA', 0) ? x[1] : x[0];
      const n = attrInt(node, 'transB', 0) ? w[0] : w[1];
      set([m, n]);
      return;
    }
    case 'MatMul':
    case 'MatMulInteger': {
      const w = s(1);
      if (!x || !w) return;
      const a = x.length === 1 ? [1, x[0]] : x;
      const b = w.length === 1 ? [w[0], 1] : w;
      const batchDims = broadcastShapes([a.slice(0, -2), b.slice(0, -2)]);
      if (!batchDims) return;
      const out = [...batchDims, a[a.length - 2], b[b.length - 1]];
      if (x.length === 1) out.splice(out.length - 2, 1);
      if (w.length === 1) out.pop();
      set(out);
      return;
    }
    case 'Range': {
      // positions 0..T-1 of a text model, T read from the input's shape
      const [start, limit, delta] = [v(0)?.[0], v(1)?.[0], v(2)?.[0]];
      if (start === undefined || limit === undefined || !delta) return;
      const n = Math.max(0, Math.ceil((limit - start) / delta));
      set([n], n <= 64 ? Array.from({ length: n }, (_, i) => start + i * delta) : undefined);
      return;
    }
    case 'Einsum': {
      const ins = node.input.map((n) => shapes.get(n));
      if (ins.some((i) => !i)) return;
      const e = parseEinsum(attrString(node, 'equation', ''), ins.map((i) => i!.length));
      set(einsumShape(e, ins as number[][]));
      return;
    }
    case 'Concat': {
      const ins = node.input.map((n) => shapes.get(n));
      if (ins.some((i) => !i)) return;
      const first = ins[0]!;
      const axis = normAxis(attrInt(node, 'axis', 0), first.length);
      const out = [...first];
      out[axis] = ins.reduce((acc, i) => acc + i![axis], 0);
      const vals = node.input.map((n) => values.get(n));
      set(out, vals.every((q) => q) ? vals.flat() as number[] : undefined);
      return;
    }
    case 'Transpose': {
      if (!x) return;
      const perm = attrInts(node, 'perm') ?? x.map((_, i) => x.length - 1 - i);
      set(perm.map((p) => x[p]));
      return;
    }
    case 'Unsqueeze': {
      if (!x) return;
      const axes = attrInts(node, 'axes') ?? v(1);
      if (!axes) return;
      const rank = x.length + axes.length;
      const norm = new Set(axes.map((a) => normAxis(a, rank)));
      const out: number[] = [];
      let k = 0;
      for (let i = 0; i < rank; i++) out.push(norm.has(i) ? 1 : x[k++]);
      set(out, v(0));
      return;
    }
    case 'Squeeze': {
      if (!x) return;
      const axes = attrInts(node, 'axes') ?? v(1);
      const norm = axes ? new Set(axes.map((a) => normAxis(a, x.length))) : undefined;
      set(x.filter((d, i) => (norm ? !norm.has(i) : d !== 1)), v(0));
      return;
    }
    case 'Gather': {
      const idx = s(1);
      if (!x || !idx) return;
      const axis = normAxis(attrInt(node, 'axis', 0), x.length);
      const out = [...x.slice(0, axis), ...idx, ...x.slice(axis + 1)];
      const data = v(0);
      const iv = v(1);
      set(out, data && iv && x.length === 1 ? iv.map((i) => data[i < 0 ? i + data.length : i]) : undefined);
      return;
    }
    case 'Slice': {
      if (!x) return;
      const starts = v(1) ?? attrInts(node, 'starts');
      const ends = v(2) ?? attrInts(node, 'ends');
      if (!starts || !ends) return;
      const axes = (node.input[3] ? v(3) : attrInts(node, 'axes')) ?? starts.map((_, i) => i);
      const steps = (node.input[4] ? v(4) : undefined) ?? starts.map(() => 1);
      const out = [...x];
      const ranges: [number, number, number][] = [];
      axes.forEach((a0, i) => {
        const a = normAxis(a0, x.length);
        const dim = x[a];
        const step = steps[i];
        const clamp = (q: number, lo: number, hi: number) => Math.min(Math.max(q, lo), hi);
        let st = starts[i] < 0 ? starts[i] + dim : starts[i];
        let en = ends[i] < 0 ? ends[i] + dim : ends[i];
        st = step > 0 ? clamp(st, 0, dim) : clamp(st, -1, dim - 1);
        en = step > 0 ? clamp(en, 0, dim) : clamp(en, -1, dim - 1);
        out[a] = Math.max(0, Math.ceil((en - st) / step));
        ranges.push([st, en, step]);
      });
      const data = v(0);
      let val: number[] | undefined;
      if (data && x.length === 1 && ranges.length === 1) {
        const [st, en, step] = ranges[0];
        val = [];
        for (let i = st; step > 0 ? i < en : i > en; i += step) val.push(data[i]);
      }
      set(out, val);
      return;
    }
    case 'Split': {
      if (!x) return;
      const axis = normAxis(attrInt(node, 'axis', 0), x.length);
      const sizes = attrInts(node, 'split') ?? v(1) ?? new Array(node.output.length).fill(x[axis] / node.output.length);
      node.output.forEach((o, i) => {
        const out = [...x];
        out[axis] = sizes[i];
        shapes.set(o, out);
      });
      return;
    }
    case 'Pad': {
      const pads = v(1) ?? attrInts(node, 'pads');
      if (!x || !pads) return;
      set(x.map((d, i) => d + pads[i] + pads[i + x.length]));
      return;
    }
    case 'ReduceMean':
    case 'ReduceSum':
    case 'ReduceMax':
    case 'ReduceMin':
    case 'ReduceL2': {
      if (!x) return;
      const axes = attrInts(node, 'axes') ?? v(1) ?? x.map((_, i) => i);
      const keep = attrInt(node, 'keepdims', 1) === 1;
      const norm = new Set(axes.map((a) => normAxis(a, x.length)));
      set(keep ? x.map((d, i) => (norm.has(i) ? 1 : d)) : x.filter((_, i) => !norm.has(i)));
      return;
    }
    case 'ArgMax':
    case 'ArgMin': {
      if (!x) return;
      const axis = normAxis(attrInt(node, 'axis', 0), x.length);
      const keep = attrInt(node, 'keepdims', 1) === 1;
      set(keep ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis));
      return;
    }
    case 'Resize':
    case 'Upsample': {
      const sizes = node.input[3] ? v(3) : undefined;
      const scales = node.input[2] ? v(2) : undefined;
      if (!x) return;
      if (sizes) set(sizes);
      else if (scales) set(x.map((d, i) => Math.floor(d * scales[i])));
      return;
    }
    default:
      return;
  }
}
