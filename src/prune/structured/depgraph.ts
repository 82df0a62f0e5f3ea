import type { ModelProto, NodeProto } from '../../onnx/proto/onnx_pb.js';
import { attrInt, attrInts, nodeLabel } from '../../onnx/graph.js';
import { FLOAT_TYPES, tensorDims } from '../../onnx/tensor.js';
import { attentionOp, einsumChannels, fusedParts, regroupReshape, shapeRead } from './attention.js';
import { type AxisUse, Context, type DependencyAnalysis, type DependencyGroup, type DimRewrite, type Tracked, layoutsOf } from './context.js';
import { type Layout, fullLayout, layoutSize, subLayout, withRepeat } from './layout.js';
import { firstUnreplacedRead } from './shapeTaint.js';
import type { SkipReason } from './skip.js';

export type { AxisUse, DependencyAnalysis, DependencyGroup, DimRewrite };

const PASS_THROUGH = new Set([
  'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Gelu', 'Erf', 'Sqrt', 'Exp', 'Log', 'Neg', 'Abs', 'Dropout', 'Identity', 'Cast',
  'HardSigmoid', 'HardSwish', 'Elu', 'Selu', 'Softplus', 'Softsign', 'Mish', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Celu',
  'ThresholdedRelu', 'Sign', 'Sin', 'Cos', 'Clip', 'Not', 'IsNaN', 'IsInf',
]);
const SPATIAL_POOL = new Set(['MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'PRelu', 'Where']);
const REDUCE = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceL1', 'ReduceL2', 'ReduceProd', 'ReduceLogSumExp', 'ReduceSumSquare']);
/** ops that only move elements: a graph input seen through them is still that input */
const SHAPE_ONLY = new Set(['Identity', 'Cast', 'Transpose', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten']);

const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/**
 * Dependency groups of a model (the DepGraph idea of Torch-Pruning, on the ONNX graph): channel indices are
 * propagated forward from every producer through the ops that keep them apart; ops that mix channels
 * (or that this analysis does not understand) mark the groups reaching them as skipped, with the reason.
 * Nothing is guessed: a group is prunable only when every tensor its channels reach is accounted for.
 */
export function analyzeDependencies(model: ModelProto): DependencyAnalysis {
  return new Analyzer(model).run();
}

class Analyzer {
  readonly c: Context;

  constructor(model: ModelProto) {
    this.c = new Context(model);
  }

  run(): DependencyAnalysis {
    const c = this.c;
    for (const node of c.index.order) {
      const ins = node.input.map((i) => (i ? c.tracked.get(i) : undefined));
      if (ins.every((t) => !t) && !isProducer(node.opType)) continue;
      try {
        this.visit(node, ins);
      } catch (e) {
        // a malformed or unexpected node must not crash the analysis: its groups are just not pruned
        c.unsupported(node, ins, `could not be analysed: ${(e as Error).message}`);
      }
    }
    for (const out of c.index.graphOutputs) {
      const t = c.tracked.get(out);
      if (t) for (const l of layoutsOf(t)) c.poison(l, { kind: 'graph-output', output: out });
    }
    // a group nothing else stopped still keeps an embedding table whole
    for (const [space, table] of c.embeddingSpaces) c.spaces.poison(space, { kind: 'embedding', table });
    this.checkConstantConsumers();
    this.checkRewrites();
    this.checkShapeReads();
    return { spaces: c.spaces, uses: c.uses, rewrites: c.rewrites, groups: this.groups() };
  }

  private groups(): DependencyGroup[] {
    const { spaces, uses } = this.c;
    const used = new Set<number>();
    for (const u of uses) for (const s of u.layout) used.add(spaces.root(s.space));
    return spaces
      .roots()
      .filter((r) => used.has(r))
      .map((r) => {
        const origins = [...new Set(spaces.members(r).map((m) => spaces.origin(m)))];
        const name = origins.length > 3 ? `${origins.slice(0, 3).join(' + ')} + ${origins.length - 3} more` : origins.join(' + ');
        return { root: r, name, size: spaces.size(r), skip: spaces.skipReason(r), block: spaces.block(r) };
      });
  }

  // ---- ops ------------------------------------------------------------------------------------------

  private visit(node: NodeProto, ins: (Tracked | undefined)[]): void {
    const c = this.c;
    const op = node.opType;
    const x = ins[0];
    const out = node.output[0];
    const unknown = (why: string) => c.unsupported(node, ins, why);

    if (ins.some((t) => t?.block || t?.parts)) return attentionOp(c, node, ins);
    if (op === 'Conv') return this.conv(node, x);
    if (op === 'ConvTranspose') return this.convTranspose(node, x);
    if (op === 'Gemm') return this.gemm(node, ins);
    if (op === 'MatMul') return this.matmul(node, ins);
    if (op === 'Einsum') return einsumChannels(c, node, ins);
    if (op === 'Gather' && !x) return this.embedding(node);
    if (!x && ins.every((t) => !t)) return;

    if (PASS_THROUGH.has(op)) {
      if (ins.slice(1).some((t) => t)) return unknown('takes channels in a parameter input');
      return c.set(out, x);
    }
    if (op === 'BatchNormalization' || op === 'InstanceNormalization') {
      if (!x || x.axis !== 1 || ins.slice(1).some((t) => t)) return unknown('normalises along an axis that is not the channel axis');
      if (node.output.length > 1 && node.output.slice(1).some((o) => o)) return unknown('has training outputs');
      for (let i = 1; i < node.input.length; i++) if (node.input[i]) c.use(node, node.input[i], 0, x.layout, 'param');
      return c.set(out, x);
    }
    if (op === 'LayerNormalization') {
      const rank = c.shape(node.input[0])?.length;
      if (!x || rank === undefined) return unknown('has an unknown input shape');
      if (x.axis >= norm(attrInt(node, 'axis', -1), rank)) return c.poison(x.layout, { kind: 'normalization', node: nodeLabel(node), op });
      if (ins.slice(1).some((t) => t)) return unknown('takes channels in a parameter input');
      return c.set(out, x);
    }
    if (op === 'Softmax' || op === 'LogSoftmax' || op === 'Hardmax') {
      const rank = c.shape(node.input[0])?.length;
      if (!x || rank === undefined) return unknown('has an unknown input shape');
      const axis = norm(attrInt(node, 'axis', -1), rank);
      if (x.axis === axis) return c.poison(x.layout, this.normalised(node));
      return c.set(out, x);
    }
    if (op === 'LpNormalization') {
      const rank = c.shape(node.input[0])?.length;
      if (!x || rank === undefined) return unknown('has an unknown input shape');
      if (x.axis === norm(attrInt(node, 'axis', -1), rank)) return c.poison(x.layout, this.normalised(node));
      return c.set(out, x);
    }
    if (SPATIAL_POOL.has(op)) {
      if (!x || x.axis !== 1) return unknown('pools over the channel axis');
      if (node.output.length > 1 && node.output[1]) return unknown('returns indices');
      return c.set(out, x);
    }
    if (op === 'Resize' || op === 'Upsample') {
      const a = c.shape(node.input[0]);
      const b = c.shape(out);
      if (!x || !a || !b || a[x.axis] !== b[x.axis] || ins.slice(1).some((t) => t)) return unknown('may resize the channel axis');
      return c.set(out, x);
    }
    if (REDUCE.has(op)) return this.reduce(node, x, unknown);
    if (BROADCAST.has(op)) return this.broadcast(node, ins, unknown);
    if (op === 'Concat') return this.concat(node, ins, unknown);
    if (op === 'Flatten') return this.flatten(node, x, unknown);
    if (op === 'Reshape') return this.reshape(node, ins, unknown);
    if (op === 'Transpose') {
      const perm = attrInts(node, 'perm') ?? c.shape(node.input[0])?.map((_, i, a) => a.length - 1 - i);
      if (!x || !perm) return unknown('has an unknown permutation');
      return c.set(out, { axis: perm.indexOf(x.axis), layout: x.layout });
    }
    if (op === 'Squeeze' || op === 'Unsqueeze') return this.squeeze(node, ins, unknown);
    if (op === 'Pad') {
      const rank = c.shape(node.input[0])?.length;
      const pads = attrInts(node, 'pads') ?? c.knownInts(node.input[1]);
      const axes = node.input[3] ? c.knownInts(node.input[3]) : undefined;
      if (!x || !pads || rank === undefined || ins.slice(1).some((t) => t)) return unknown('has pads that are not constant');
      const padded = axes ? axes.map((a) => norm(a, rank)) : [...Array(rank).keys()];
      const k = padded.indexOf(x.axis);
      if (k >= 0 && (pads[k] !== 0 || pads[k + padded.length] !== 0)) return unknown('pads the channel axis');
      return c.set(out, x);
    }
    if (op === 'Split') return this.split(node, x, unknown);
    if (op === 'Slice') return this.slice(node, ins, unknown);
    if (op === 'Gather') {
      const rank = c.shape(node.input[0])?.length;
      const idx = c.shape(node.input[1]);
      if (!x || ins[1] || rank === undefined || !idx) return unknown('gathers along an unknown axis');
      const axis = norm(attrInt(node, 'axis', 0), rank);
      if (axis === x.axis) return unknown('gathers along the channel axis');
      return c.set(out, { axis: x.axis < axis ? x.axis : x.axis - 1 + idx.length, layout: x.layout });
    }
    // harmless when only non-channel dims are read (the batch size for a dynamic Reshape); checked at the end
    if (op === 'Shape') return x ? shapeRead(c, node, x) : undefined;
    unknown('is not understood by the channel analysis');
  }

  /**
   * The output channels of a producer: one space, or one per part when the graph cuts them right away
   * into equal parts (a fused QKV projection), so the parts can be paired with each other.
   */
  private produced(node: NodeProto, size: number, axis: number): Layout {
    const c = this.c;
    const parts = fusedParts(c, node.output[0], axis, size);
    if (!parts) return c.fresh(node, size);
    const layout: Layout = [];
    for (let p = 0; p < parts; p++) {
      const space = c.spaces.create(size / parts, nodeLabel(node));
      c.fusedSpaces.add(space);
      layout.push(...fullLayout(space, size / parts));
    }
    return layout;
  }

  /**
   * An embedding lookup (Gather of rows of a 2-D float table): its columns are channels the residual
   * stream of a text transformer starts with, followed so the stream is one group; the table itself keeps
   * its width (checked at the end).
   */
  private embedding(node: NodeProto): void {
    const c = this.c;
    const table = c.constant(node.input[0]);
    const rank = c.shape(node.output[0])?.length;
    if (!table || !FLOAT_TYPES.has(table.tensor.dataType) || tensorDims(table.tensor).length !== 2 || attrInt(node, 'axis', 0) !== 0 || rank === undefined) return;
    const layout = c.fresh(node, tensorDims(table.tensor)[1]);
    c.embeddingSpaces.set(layout[0].space, table.name);
    c.use(node, node.input[0], 1, layout, 'param');
    c.set(node.output[0], { axis: rank - 1, layout });
  }

  private conv(node: NodeProto, x: Tracked | undefined): void {
    const c = this.c;
    const w = c.constant(node.input[1]);
    const label = nodeLabel(node);
    const group = attrInt(node, 'group', 1);
    const dims = w ? tensorDims(w.tensor) : undefined;
    if (!w || !dims) {
      if (x) c.poison(x.layout, { kind: 'not-constant', node: label, tensor: node.input[1] });
      return;
    }
    const cout = dims[0];
    const cinPerGroup = dims[1];
    if (x && x.axis !== 1) {
      c.unsupported(node, [x], `reads channels on axis ${x.axis}`);
      return;
    }
    if (group === 1) {
      if (x) c.use(node, node.input[1], 1, x.layout, 'fanin', { ...x, name: node.input[0] });
      const layout = this.produced(node, cout, 1);
      c.use(node, node.input[1], 0, layout, 'param');
      if (node.input[2]) c.use(node, node.input[2], 0, layout, 'param');
      c.set(node.output[0], { axis: 1, layout });
      return;
    }
    // depthwise (one filter per input channel): the output channels are the input channels
    if (cinPerGroup === 1 && cout === group && x && layoutSize(x.layout) === group) {
      c.use(node, node.input[1], 0, x.layout, 'param');
      if (node.input[2]) c.use(node, node.input[2], 0, x.layout, 'param');
      c.addRewrite(node, { attr: 'group' }, 0, x.layout);
      c.set(node.output[0], { axis: 1, layout: x.layout });
      return;
    }
    const why: SkipReason = cinPerGroup === 1 && cout === group && !x
      ? { kind: 'unsupported', node: label, op: 'Conv', detail: 'is a depthwise convolution whose input channels come from ops the analysis could not follow' }
      : { kind: 'grouped-conv', node: label, group, perGroup: cinPerGroup };
    if (x) c.poison(x.layout, why);
    c.set(node.output[0], { axis: 1, layout: c.fresh(node, cout, why) });
  }

  private convTranspose(node: NodeProto, x: Tracked | undefined): void {
    const c = this.c;
    const w = c.constant(node.input[1]);
    if (!w || attrInt(node, 'group', 1) !== 1 || (x && x.axis !== 1)) {
      if (x) c.unsupported(node, [x], 'is a grouped or non-constant transposed convolution');
      return;
    }
    const dims = tensorDims(w.tensor);
    if (x) c.use(node, node.input[1], 0, x.layout, 'fanin', { ...x, name: node.input[0] });
    const layout = this.produced(node, dims[1], 1);
    c.use(node, node.input[1], 1, layout, 'param');
    if (node.input[2]) c.use(node, node.input[2], 0, layout, 'param');
    c.set(node.output[0], { axis: 1, layout });
  }

  private gemm(node: NodeProto, ins: (Tracked | undefined)[]): void {
    const c = this.c;
    const [a, b, bias] = ins;
    const w = c.constant(node.input[1]);
    if (b || bias || !w || attrInt(node, 'transA', 0) !== 0) {
      if (a) c.unsupported(node, [a], 'has a non-constant or transposed operand');
      if (b) c.unsupported(node, [b], 'multiplies two activations');
      return;
    }
    const transB = attrInt(node, 'transB', 0) === 1;
    const dims = tensorDims(w.tensor);
    const outUnits = transB ? dims[0] : dims[1];
    if (a) {
      if (a.axis !== 1) return c.unsupported(node, [a], `reads channels on axis ${a.axis}`);
      c.use(node, node.input[1], transB ? 1 : 0, a.layout, 'fanin', { ...a, name: node.input[0] });
    }
    const layout = this.produced(node, outUnits, 1);
    c.use(node, node.input[1], transB ? 0 : 1, layout, 'param');
    const b2 = node.input[2] ? c.constant(node.input[2]) : undefined;
    if (node.input[2] && !b2) c.poison(layout, { kind: 'not-constant', node: nodeLabel(node), tensor: node.input[2] });
    if (b2) {
      const bd = tensorDims(b2.tensor);
      if (bd.length > 0 && bd[bd.length - 1] === outUnits && outUnits !== 1) c.use(node, node.input[2], bd.length - 1, layout, 'param');
      else if (bd.length === 2 && bd[0] !== 1) c.poison(layout, { kind: 'unsupported', node: nodeLabel(node), op: 'Gemm', detail: 'has a per-row bias' });
    }
    c.set(node.output[0], { axis: 1, layout });
  }

  private matmul(node: NodeProto, ins: (Tracked | undefined)[]): void {
    const c = this.c;
    const [a, b] = ins;
    const wb = c.constant(node.input[1]);
    const rankA = c.shape(node.input[0])?.length;
    if (wb && tensorDims(wb.tensor).length === 2 && !b && rankA !== undefined && rankA >= 2) {
      const dims = tensorDims(wb.tensor);
      if (a) {
        if (a.axis !== rankA - 1) return c.unsupported(node, [a], 'reads channels on a batch or row axis');
        c.use(node, node.input[1], 0, a.layout, 'fanin', { ...a, name: node.input[0] });
      }
      const layout = this.produced(node, dims[1], rankA - 1);
      c.use(node, node.input[1], 1, layout, 'param');
      c.set(node.output[0], { axis: rankA - 1, layout });
      return;
    }
    const why = a && b ? 'multiplies two activations (attention scores)' : rankA === undefined ? 'has an input of unknown shape' : 'has an operand layout the analysis does not follow';
    const reason: SkipReason = { kind: 'unsupported', node: nodeLabel(node), op: 'MatMul', detail: why };
    c.poisonAll([a, b], reason);
    // a constant weight still produces hidden units: report them as a skipped group rather than not at all
    if (wb && !b && tensorDims(wb.tensor).length === 2) {
      const layout = c.fresh(node, tensorDims(wb.tensor)[1], reason);
      c.use(node, node.input[1], 1, layout, 'param');
    }
  }

  private reduce(node: NodeProto, x: Tracked | undefined, unknown: (w: string) => void): void {
    const c = this.c;
    const rank = c.shape(node.input[0])?.length;
    if (!x || rank === undefined) return unknown('has an unknown input shape');
    const axesIn = attrInts(node, 'axes') ?? (node.input[1] ? c.knownInts(node.input[1]) : undefined);
    if (node.input[1] && !axesIn) return unknown('has axes that are not constant');
    const axes = (axesIn ?? [...Array(rank).keys()]).map((a) => norm(a, rank));
    if (axes.length === 0 && attrInt(node, 'noop_with_empty_axes', 0) === 1) return c.set(node.output[0], x);
    if (axes.length === 0 || axes.includes(x.axis)) {
      // x - mean(x) over the channels: a LayerNorm written out (opset < 17 exports); x / ||x||: an L2 norm
      const reads = c.index.consumersOf(node.output[0]);
      const centred = node.opType === 'ReduceMean' && reads.some((s) => s.opType === 'Sub' && s.input[0] === node.input[0]);
      const scaled = (node.opType === 'ReduceL2' || node.opType === 'ReduceL1') && reads.some((s) => s.opType === 'Div' || s.opType === 'Clip' || s.opType === 'Max');
      if (centred || scaled) return c.poison(x.layout, { kind: 'normalization', node: nodeLabel(node), op: centred ? 'LayerNorm as ReduceMean/Sub' : `${node.opType} normalisation` });
      return unknown('reduces over the channel axis');
    }
    const keep = attrInt(node, 'keepdims', 1) === 1;
    const axis = keep ? x.axis : x.axis - axes.filter((a) => a < x.axis).length;
    c.set(node.output[0], { axis, layout: x.layout });
  }

  private broadcast(node: NodeProto, ins: (Tracked | undefined)[], unknown: (w: string) => void): void {
    const c = this.c;
    const outShape = c.shape(node.output[0]);
    if (!outShape) return unknown('has an unknown output shape');
    const rank = outShape.length;
    let result: Tracked | undefined;
    for (let i = 0; i < ins.length; i++) {
      const t = ins[i];
      if (!t) continue;
      const r = c.shape(node.input[i])?.length;
      if (r === undefined) return unknown('has an unknown input shape');
      const here = { axis: t.axis + rank - r, layout: t.layout };
      if (!result) result = here;
      else if (result.axis !== here.axis) return unknown('combines channels on different axes');
      else if (!c.unify(result.layout, here.layout, node, 'the operands')) return;
    }
    if (!result) return;
    const size = layoutSize(result.layout);
    for (let i = 0; i < ins.length; i++) {
      if (ins[i] || !node.input[i]) continue;
      const s = c.shape(node.input[i]);
      if (!s) return unknown('has an operand of unknown shape');
      const k = result.axis - (rank - s.length);
      if (k < 0 || s[k] === 1) continue;
      if (s[k] !== size) return unknown('broadcasts an operand of another size over the channel axis');
      if (!c.constant(node.input[i])) {
        const input = this.graphInput(node.input[i]);
        if (input) return c.poison(result.layout, { kind: 'graph-input', node: nodeLabel(node), input });
        return unknown('adds an activation that carries channels the analysis cannot follow');
      }
      if (!c.use(node, node.input[i], k, result.layout, 'param')) return;
    }
    c.set(node.output[0], result);
  }

  /**
   * A normalisation over the channels: by design when its result is a graph output (a classifier's
   * Softmax, also behind Flatten or Squeeze), else a normalisation the channels cannot leave.
   */
  private normalised(node: NodeProto): SkipReason {
    let n = node.output[0];
    for (let hop = 0; hop < 8; hop++) {
      if (this.c.index.graphOutputs.has(n)) return { kind: 'graph-output', output: n };
      const readers = this.c.index.consumersOf(n);
      if (readers.length !== 1 || !SHAPE_ONLY.has(readers[0].opType)) break;
      n = readers[0].output[0];
    }
    return { kind: 'normalization', node: nodeLabel(node), op: node.opType };
  }

  /** The graph input a tensor is, seen through ops that only move elements; undefined otherwise. */
  private graphInput(name: string): string | undefined {
    let n = name;
    for (let hop = 0; hop < 8; hop++) {
      if (this.c.index.inputs.some((i) => i.name === n)) return n;
      const p = this.c.index.producer.get(n);
      if (!p || !SHAPE_ONLY.has(p.opType)) return undefined;
      n = p.input[0];
    }
    return undefined;
  }

  /**
   * A constant joined with tracked channels along another axis (a ViT's class token, often broadcast
   * over the batch by Expand): its channel axis is sliced with the group.
   */
  private constantAlongside(node: NodeProto, name: string, axis: number, rank: number, layout: Layout): boolean {
    const c = this.c;
    let reader = node;
    let source = name;
    const p = c.index.producer.get(name);
    if (p?.opType === 'Expand') {
      const target = c.knownInts(p.input[1]);
      const k = axis - (rank - (target?.length ?? rank));
      if (!target || (k >= 0 && target[k] !== 1)) return false;
      reader = p;
      source = p.input[0];
    }
    const cst = c.constant(source);
    if (!cst) return false;
    const k = axis - (rank - tensorDims(cst.tensor).length);
    if (k < 0 || tensorDims(cst.tensor)[k] !== layoutSize(layout)) return false;
    return c.use(reader, source, k, layout, 'param');
  }

  private concat(node: NodeProto, ins: (Tracked | undefined)[], unknown: (w: string) => void): void {
    const c = this.c;
    const rank = c.shape(node.output[0])?.length;
    if (rank === undefined) return unknown('has an unknown output shape');
    const axis = norm(attrInt(node, 'axis', 0), rank);
    const trackedAxes = new Set(ins.filter((t) => t).map((t) => t!.axis));
    if (trackedAxes.size > 1) return unknown('concatenates tensors with channels on different axes');
    const [tAxis] = trackedAxes;
    if (tAxis !== axis) {
      // joined along another axis (tokens): every input must carry the same channels
      const first = ins.find((t) => t)!;
      for (let i = 0; i < ins.length; i++) {
        const t = ins[i];
        if (t && !c.unify(first.layout, t.layout, node, 'the joined tensors')) return;
        if (!t && !this.constantAlongside(node, node.input[i], tAxis, rank, first.layout)) return unknown('joins a tensor whose channels the analysis cannot follow');
      }
      return c.set(node.output[0], first);
    }
    const layout: Layout = [];
    for (let i = 0; i < ins.length; i++) {
      const t = ins[i];
      if (t) layout.push(...t.layout);
      else {
        const s = c.shape(node.input[i]);
        if (!s) return unknown('joins an input of unknown shape');
        // fixed channels from an input the analysis does not own: they stay, their neighbours may go
        const why: SkipReason = { kind: 'unsupported', node: nodeLabel(node), op: 'Concat', detail: `takes channels from '${node.input[i]}', which no prunable layer produces` };
        if (s[axis] > 0) layout.push(...c.fresh(node, s[axis], why));
      }
    }
    c.set(node.output[0], { axis, layout });
  }

  private flatten(node: NodeProto, x: Tracked | undefined, unknown: (w: string) => void): void {
    const c = this.c;
    const s = c.shape(node.input[0]);
    if (!x || !s) return unknown('has an unknown input shape');
    const axis = norm(attrInt(node, 'axis', 1), s.length);
    if (x.axis < axis) return c.set(node.output[0], x);
    if (x.axis !== axis) return unknown('flattens the channel axis into the middle of a dimension');
    c.set(node.output[0], { axis: 1, layout: withRepeat(x.layout, prod(s.slice(axis + 1))) });
  }

  private reshape(node: NodeProto, ins: (Tracked | undefined)[], unknown: (w: string) => void): void {
    const c = this.c;
    const x = ins[0];
    const inS = c.shape(node.input[0]);
    const outS = c.shape(node.output[0]);
    if (!x || ins[1] || !inS || !outS) return unknown('has an unknown shape');
    const a = x.axis;
    const tail = prod(inS.slice(a + 1));
    const rewrite = (k: number, layout: Layout, allowZero: boolean): boolean => {
      // the channel count copied from the reshaped tensor's own shape, at its channel axis, follows by itself
      if (c.copiesOwnLength(node, k, (axis) => axis === a && sameDims(layoutShape(layout), layoutShape(x.layout)))) return true;
      const t = c.targetSlot(node, k);
      if (!t || t.dynamic) return (unknown('has a computed target shape that would need the channel count'), false);
      if (t.value === 0 && !allowZero) return (unknown('copies a dimension by position'), false);
      if (t.value !== -1 && t.value !== 0) c.rewrites.push({ ...t.rewrite, layout });
      return true;
    };
    // the channel axis and everything after it merge into the last output axis (Flatten written as Reshape)
    if (outS.length >= 1 && prod(outS.slice(0, -1)) === prod(inS.slice(0, a)) && sameDims(outS.slice(0, -1), inS.slice(0, a))) {
      const k = outS.length - 1;
      const layout = withRepeat(x.layout, tail);
      if (!rewrite(k, layout, false)) return;
      return c.set(node.output[0], { axis: k, layout });
    }
    // dims up to the channel axis unchanged, only later dims regrouped ([B,C,H,W] -> [B,C,H*W])
    if (outS.length > a && sameDims(outS.slice(0, a + 1), inS.slice(0, a + 1)) && prod(outS.slice(a + 1)) === tail) {
      if (!rewrite(a, x.layout, true)) return;
      return c.set(node.output[0], { axis: a, layout: x.layout });
    }
    // the channel axis survives unchanged with the same trailing dims ([B,T,C] <-> [B*T,C])
    const k = outS.length - (inS.length - a);
    if (k >= 0 && outS[k] === inS[a] && sameDims(outS.slice(k + 1), inS.slice(a + 1)) && prod(outS.slice(0, k)) === prod(inS.slice(0, a))) {
      if (!rewrite(k, x.layout, k === a)) return;
      return c.set(node.output[0], { axis: k, layout: x.layout });
    }
    // the channels cut into heads, fused parts, or merged with other dims
    regroupReshape(c, node, x);
  }

  private squeeze(node: NodeProto, ins: (Tracked | undefined)[], unknown: (w: string) => void): void {
    const c = this.c;
    const x = ins[0];
    const inS = c.shape(node.input[0]);
    const outS = c.shape(node.output[0]);
    if (!x || !inS || !outS || ins[1]) return unknown('has an unknown shape');
    const axesIn = attrInts(node, 'axes') ?? c.knownInts(node.input[1]);
    if (node.opType === 'Squeeze') {
      const axes = (axesIn ?? inS.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)).map((v) => norm(v, inS.length));
      if (axes.includes(x.axis)) return unknown('squeezes the channel axis');
      return c.set(node.output[0], { axis: x.axis - axes.filter((v) => v < x.axis).length, layout: x.layout });
    }
    if (!axesIn) return unknown('has axes that are not constant');
    const axes = axesIn.map((v) => norm(v, outS.length)).sort((p, q) => p - q);
    let axis = x.axis;
    for (const v of axes) if (v <= axis) axis++;
    c.set(node.output[0], { axis, layout: x.layout });
  }

  private split(node: NodeProto, x: Tracked | undefined, unknown: (w: string) => void): void {
    const c = this.c;
    const s = c.shape(node.input[0]);
    if (!x || !s) return unknown('has an unknown shape');
    const axis = norm(attrInt(node, 'axis', 0), s.length);
    if (axis !== x.axis) {
      for (const o of node.output) c.set(o, x);
      return;
    }
    const fromInput = node.input[1] ? c.ints(node.input[1]) : undefined;
    if (node.input[1] && !fromInput) return unknown('has split sizes that are not constant');
    const sizes = fromInput ?? attrInts(node, 'split') ?? node.output.map((o) => c.shape(o)?.[axis] ?? -1);
    if (sizes.some((v) => v < 0) || sizes.length !== node.output.length) return unknown('has split sizes the analysis cannot read');
    const parts: Layout[] = [];
    let pos = 0;
    for (const n of sizes) {
      const part = subLayout(x.layout, pos, pos + n);
      if (!part) return unknown('splits through a flattened channel block');
      parts.push(part);
      pos += n;
    }
    const target: DimRewrite['target'] = fromInput ? { input: 1 } : attrInts(node, 'split') ? { attr: 'split' } : { attr: '' };
    if ('attr' in target && target.attr === '') {
      // equal split by output count: pruning must keep the parts equal, which is not guaranteed
      return unknown('splits into equal parts without explicit sizes');
    }
    parts.forEach((p, i) => {
      c.addRewrite(node, target, i, p);
      c.set(node.output[i], { axis, layout: p });
    });
  }

  private slice(node: NodeProto, ins: (Tracked | undefined)[], unknown: (w: string) => void): void {
    const c = this.c;
    const x = ins[0];
    const s = c.shape(node.input[0]);
    if (!x || !s || ins.slice(1).some((t) => t)) return unknown('has an unknown shape');
    const fromAttr = node.input.length < 3;
    // bounds computed from shapes pruning leaves alone (torch's chunk) are written back as constants
    const bound = (i: number) => c.ints(node.input[i]) ?? c.staticInts(node.input[i]);
    const starts = fromAttr ? attrInts(node, 'starts') : bound(1);
    const ends = fromAttr ? attrInts(node, 'ends') : bound(2);
    const axesV = fromAttr ? attrInts(node, 'axes') : node.input[3] ? c.knownInts(node.input[3]) : undefined;
    const steps = !fromAttr && node.input[4] ? c.knownInts(node.input[4]) : undefined;
    if (!starts || !ends || (!fromAttr && node.input[3] && !axesV)) return unknown('has bounds that are not constant');
    const axes = (axesV ?? starts.map((_, i) => i)).map((v) => norm(v, s.length));
    const k = axes.indexOf(x.axis);
    if (k < 0) return c.set(node.output[0], x);
    if (steps && steps[k] !== 1) return unknown('slices the channel axis with a step');
    if (fromAttr) return unknown('slices the channel axis with attribute bounds (opset < 10)');
    const n = s[x.axis];
    const clampB = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
    const a = clampB(starts[k]);
    const b = Math.max(a, clampB(ends[k]));
    const part = subLayout(x.layout, a, b);
    const before = subLayout(x.layout, 0, a);
    if (!part || !before) return unknown('slices through a flattened channel block');
    // the bounds become the kept sizes of what lies before and inside the slice
    const write = (input: number, layout: Layout, values: number[]) => {
      const computed = c.ints(node.input[input]) ? undefined : { values, dims: c.shape(node.input[input]) ?? [values.length] };
      c.rewrites.push({ node: c.nodeIndex.get(node)!, target: { input }, element: k, layout, base: 0, ...(computed ? { computed } : {}) });
    };
    write(1, before, starts);
    write(2, [...before, ...part], ends);
    c.set(node.output[0], { axis: x.axis, layout: part });
  }

  /** A constant we slice must not also feed a node that did not register the slice. */
  private checkConstantConsumers(): void {
    const c = this.c;
    const readers = new Map<string, Set<number>>();
    const axesOf = new Map<string, Layout[]>();
    for (const u of c.uses) {
      let r = readers.get(u.tensor);
      if (!r) readers.set(u.tensor, (r = new Set()));
      r.add(u.node);
      const l = axesOf.get(u.tensor) ?? [];
      l.push(u.layout);
      axesOf.set(u.tensor, l);
    }
    for (const [name, nodes] of readers) {
      for (const reader of this.finalReaders(name)) {
        if (!nodes.has(c.nodeIndex.get(reader)!)) {
          for (const l of axesOf.get(name)!) c.poison(l, { kind: 'shared-constant', tensor: name, reader: nodeLabel(reader), op: reader.opType });
        }
      }
      if (c.index.graphOutputs.has(name)) for (const l of axesOf.get(name)!) c.poison(l, { kind: 'graph-output', output: name });
    }
  }

  private finalReaders(name: string): NodeProto[] {
    const out: NodeProto[] = [];
    for (const r of this.c.index.consumersOf(name)) {
      if (r.opType === 'Identity') out.push(...this.finalReaders(r.output[0]));
      else out.push(r);
    }
    return out;
  }

  /** Two rewrites of one element must agree for every choice of kept channels, or both groups stay whole. */
  private checkRewrites(): void {
    const c = this.c;
    const seen = new Map<string, DimRewrite>();
    const key = (r: DimRewrite) => `${r.node}:${'input' in r.target ? r.target.input : r.target.attr}:${r.element}`;
    const formula = (r: DimRewrite) =>
      r.fixed !== undefined
        ? `=${r.fixed}`
        : `${r.layout.map((s) => `${c.spaces.root(s.space)}:${s.start}:${s.len}:${s.repeat}`).join(',')}/${r.divisor ?? 1}*${r.multiplier ?? 1}+${r.base ?? 0}`;
    for (const r of c.rewrites) {
      const prior = seen.get(key(r));
      if (!prior) seen.set(key(r), r);
      else if (formula(prior) !== formula(r)) {
        const node = c.model.graph!.node[r.node];
        const reason: SkipReason = { kind: 'shape-arithmetic', node: nodeLabel(node), op: node.opType, detail: 'holds one shape value that two groups would set differently' };
        c.poison(prior.layout, reason);
        c.poison(r.layout, reason);
      }
    }
  }

  /** Shape reads of pruned lengths must only feed values the surgery replaces with constants. */
  private checkShapeReads(): void {
    const c = this.c;
    const replaced = new Set(c.rewrites.flatMap((r) => ('input' in r.target ? [`${r.node}:${r.target.input}`] : [])));
    const length = (name: string) => {
      const s = c.shape(name);
      return s ? (s.length === 0 ? 1 : s[0]) : undefined;
    };
    for (const read of c.shapeReads) {
      const safe = (n: NodeProto, i: number, elements: ReadonlySet<number>) => {
        const key = `${c.nodeIndex.get(n)}:${i}`;
        const copies = c.selfCopies.get(key);
        return replaced.has(key) || (copies !== undefined && [...elements].every((e) => copies.has(e)));
      };
      const sink = firstUnreplacedRead(c.index, read, safe, (n) => c.knownInts(n), length);
      if (!sink) continue;
      const reason: SkipReason = {
        kind: 'shape-arithmetic', node: nodeLabel(sink.node), op: sink.node.opType,
        detail: `uses a channel count read by ${nodeLabel(read.node)} (Shape) at run time`,
      };
      for (const l of read.layouts) c.poison(l, reason);
    }
  }
}

function isProducer(op: string): boolean {
  return op === 'Conv' || op === 'ConvTranspose' || op === 'Gemm' || op === 'MatMul' || op === 'Einsum' || op === 'Gather';
}

/** a layout's identity for comparing: its segments (a Flatten's repeat changes it) */
function layoutShape(layout: Layout): number[] {
  return layout.flatMap((s) => [s.space, s.start, s.len, s.repeat]);
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
