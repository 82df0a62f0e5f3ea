import type { ModelProto, NodeProto, TensorProto } from '../../onnx/proto/onnx_pb.js';
import { GraphIndex, attrInt, attrInts, nodeLabel } from '../../onnx/graph.js';
import { inferShapes } from '../../onnx/shapes.js';
import { FLOAT_TYPES, tensorDims, tensorToInts } from '../../onnx/tensor.js';
import { type Layout, Spaces, fullLayout, layoutSize, subLayout, withRepeat } from './layout.js';

/**
 * One axis of a constant that must be sliced with a group. `param`: a producer's own slice (Conv output
 * filters, bias, BatchNorm statistics, a depthwise filter); `fanin`: a consumer that sums over the
 * channels (the next Conv's input axis, a Gemm's input columns). Zeroing a group's `fanin` slices is the
 * reference the exactness test compares physically pruned models against.
 */
export interface AxisUse {
  /** initializer name, or a Constant node's output name */
  tensor: string;
  axis: number;
  layout: Layout;
  role: 'param' | 'fanin';
  /** index into graph.node of the node that reads it */
  node: number;
  /** for fanin: the activation entering the consumer and its channel axis (data-driven criteria) */
  activation?: string;
  activationAxis?: number;
}

/**
 * A constant element (a Reshape target, a Split size, a Slice bound, the `group` of a depthwise Conv)
 * that must become the kept size of `layout` plus `base`.
 */
export interface DimRewrite {
  node: number;
  /** node input index holding a constant int tensor, or an attribute name */
  target: { input: number } | { attr: string };
  element: number;
  layout: Layout;
  base?: number;
  /** the element counts blocks (heads) of this many channels */
  divisor?: number;
}

export interface DependencyGroup {
  /** union-find root; the key of keep masks */
  root: number;
  name: string;
  /** channels in the group */
  size: number;
  /** why it is left unpruned; undefined = prunable */
  skip?: string;
  /** channels go in blocks of this size (attention heads); 1 otherwise */
  block: number;
}

export interface DependencyAnalysis {
  spaces: Spaces;
  uses: AxisUse[];
  rewrites: DimRewrite[];
  groups: DependencyGroup[];
}

interface Tracked {
  axis: number;
  layout: Layout;
  /** inside attention: each element of `axis` (the head axis) stands for `block` channels of the layout */
  block?: number;
  /** inside attention: the axis holding the channels within a head, when the tensor still has it */
  dAxis?: number;
}

const PASS_THROUGH = new Set([
  'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Gelu', 'Erf', 'Sqrt', 'Exp', 'Log', 'Neg', 'Abs', 'Dropout', 'Identity', 'Cast',
  'HardSigmoid', 'HardSwish', 'Elu', 'Selu', 'Softplus', 'Softsign', 'Mish', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Celu',
  'ThresholdedRelu', 'Sign', 'Sin', 'Cos', 'Clip', 'Not', 'IsNaN', 'IsInf',
]);
const SPATIAL_POOL = new Set(['MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'PRelu', 'Where']);
const REDUCE = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceL1', 'ReduceL2', 'ReduceProd', 'ReduceLogSumExp', 'ReduceSumSquare']);

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
  readonly index: GraphIndex;
  readonly spaces = new Spaces();
  readonly uses: AxisUse[] = [];
  readonly rewrites: DimRewrite[] = [];
  readonly tracked = new Map<string, Tracked>();
  readonly shapes: Map<string, number[]>;
  /** small int tensors computed by shape arithmetic (Pad amounts, Reshape targets built from Concat) */
  readonly values: Map<string, number[]>;
  readonly nodeIndex = new Map<NodeProto, number>();
  /** constant tensor -> the first layout registered per axis, so shared constants are sliced one way */
  readonly constantAxes = new Map<string, Map<number, Layout>>();

  constructor(readonly model: ModelProto) {
    this.index = new GraphIndex(model.graph!);
    const info = inferShapes(this.index, 2);
    this.shapes = info.shapes;
    this.values = info.values;
    model.graph!.node.forEach((n, i) => this.nodeIndex.set(n, i));
  }

  run(): DependencyAnalysis {
    for (const node of this.index.order) {
      const ins = node.input.map((i) => (i ? this.tracked.get(i) : undefined));
      if (ins.every((t) => !t) && !isProducer(node.opType)) continue;
      try {
        this.visit(node, ins);
      } catch (e) {
        // a malformed or unexpected node must not crash the analysis: its groups are just not pruned
        this.poisonAll(ins, `${nodeLabel(node)} (${node.opType}) could not be analysed: ${(e as Error).message}`);
      }
    }
    for (const out of this.index.graphOutputs) {
      const t = this.tracked.get(out);
      if (t) this.poison(t.layout, `reaches graph output '${out}', whose shape must not change`);
    }
    this.checkConstantConsumers();
    return { spaces: this.spaces, uses: this.uses, rewrites: this.rewrites, groups: this.groups() };
  }

  private groups(): DependencyGroup[] {
    const used = new Set<number>();
    for (const u of this.uses) for (const s of u.layout) used.add(this.spaces.root(s.space));
    return this.spaces
      .roots()
      .filter((r) => used.has(r))
      .map((r) => {
        const origins = [...new Set(this.spaces.members(r).map((m) => this.spaces.origin(m)))];
        const name = origins.length > 3 ? `${origins.slice(0, 3).join(' + ')} + ${origins.length - 3} more` : origins.join(' + ');
        return { root: r, name, size: this.spaces.size(r), skip: this.spaces.skipReason(r), block: this.spaces.block(r) };
      });
  }

  // ---- helpers --------------------------------------------------------------------------------------

  private poison(layout: Layout, reason: string): void {
    for (const s of layout) this.spaces.poison(s.space, reason);
  }

  private poisonAll(ins: (Tracked | undefined)[], reason: string): void {
    for (const t of ins) if (t) this.poison(t.layout, reason);
  }

  private shape(name: string): number[] | undefined {
    return name ? this.shapes.get(name) : undefined;
  }

  /** The constant behind a name, following Identity nodes (exporters alias shared parameters that way). */
  private constant(name: string): { name: string; tensor: TensorProto } | undefined {
    let n = name;
    for (let hop = 0; hop < 8 && n; hop++) {
      const t = this.index.constant(n);
      if (t) return { name: n, tensor: t };
      const p = this.index.producer.get(n);
      if (!p || p.opType !== 'Identity') return undefined;
      n = p.input[0];
    }
    return undefined;
  }

  private ints(name: string | undefined): number[] | undefined {
    if (!name) return undefined;
    const c = this.constant(name);
    return c ? tensorToInts(c.tensor) : undefined;
  }

  /** a constant, or a small int tensor the shape pass could evaluate (read-only uses: never rewritten) */
  private knownInts(name: string | undefined): number[] | undefined {
    return name ? (this.ints(name) ?? this.values.get(name)) : undefined;
  }

  /** Register a slice of a constant; a constant shared by two readers must be sliced the same way. */
  private use(node: NodeProto, name: string, axis: number, layout: Layout, role: 'param' | 'fanin', activation?: Tracked & { name: string }): boolean {
    const c = this.constant(name);
    if (!c || !FLOAT_TYPES.has(c.tensor.dataType)) {
      this.poison(layout, `${nodeLabel(node)} reads '${name}', which is not a float constant`);
      return false;
    }
    const dims = tensorDims(c.tensor);
    if (dims[axis] !== layoutSize(layout)) {
      this.poison(layout, `${nodeLabel(node)}: '${name}' axis ${axis} has ${dims[axis]} entries, expected ${layoutSize(layout)}`);
      return false;
    }
    let axes = this.constantAxes.get(c.name);
    if (!axes) this.constantAxes.set(c.name, (axes = new Map()));
    const prior = axes.get(axis);
    if (prior) this.unify(prior, layout, `'${c.name}' is shared by several nodes`);
    else axes.set(axis, layout);
    this.uses.push({
      tensor: c.name, axis, layout, role, node: this.nodeIndex.get(node)!,
      activation: activation?.name, activationAxis: activation?.axis,
    });
    return true;
  }

  private fresh(node: NodeProto, size: number, skip?: string): Layout {
    return fullLayout(this.spaces.create(size, nodeLabel(node), skip), size);
  }

  private set(name: string, t: Tracked | undefined): void {
    if (t && name) this.tracked.set(name, t);
  }

  /**
   * Two layouts whose channels meet element by element (a residual Add): their spaces become one group.
   * Only whole spaces can merge; anything else is refused rather than approximated.
   */
  private unify(a: Layout, b: Layout, where: string): boolean {
    const ok =
      a.length === b.length &&
      a.every((sa, i) => {
        const sb = b[i];
        if (sa.len !== sb.len || sa.repeat !== sb.repeat) return false;
        if (this.spaces.root(sa.space) === this.spaces.root(sb.space)) return sa.start === sb.start;
        return sa.start === 0 && sb.start === 0 && this.spaces.size(sa.space) === sa.len && this.spaces.size(sb.space) === sb.len;
      });
    if (!ok) {
      const reason = `${where}: channel ranges of coupled tensors do not line up`;
      this.poison(a, reason);
      this.poison(b, reason);
      return false;
    }
    a.forEach((sa, i) => this.spaces.union(sa.space, b[i].space));
    return true;
  }

  private addRewrite(node: NodeProto, target: DimRewrite['target'], element: number, layout: Layout, base = 0): void {
    this.rewrites.push({ node: this.nodeIndex.get(node)!, target, element, layout, base });
  }

  // ---- ops ------------------------------------------------------------------------------------------

  private visit(node: NodeProto, ins: (Tracked | undefined)[]): void {
    const op = node.opType;
    const x = ins[0];
    const out = node.output[0];
    const label = nodeLabel(node);
    const unknown = (why: string) => this.poisonAll(ins, `${label} (${op}) ${why}`);

    if (ins.some((t) => t?.block)) return this.headOp(node, ins, unknown);
    if (op === 'Conv') return this.conv(node, x);
    if (op === 'ConvTranspose') return this.convTranspose(node, x);
    if (op === 'Gemm') return this.gemm(node, ins);
    if (op === 'MatMul') return this.matmul(node, ins);
    if (!x && ins.every((t) => !t)) return;

    if (PASS_THROUGH.has(op)) {
      if (ins.slice(1).some((t) => t)) return unknown('takes channels in a parameter input');
      return this.set(out, x);
    }
    if (op === 'BatchNormalization' || op === 'InstanceNormalization') {
      if (!x || x.axis !== 1 || ins.slice(1).some((t) => t)) return unknown('normalises along an axis that is not the channel axis');
      if (node.output.length > 1 && node.output.slice(1).some((o) => o)) return unknown('has training outputs');
      for (let i = 1; i < node.input.length; i++) if (node.input[i]) this.use(node, node.input[i], 0, x.layout, 'param');
      return this.set(out, x);
    }
    if (op === 'LayerNormalization') {
      const rank = this.shape(node.input[0])?.length;
      if (!x || rank === undefined) return unknown('has an unknown input shape');
      if (x.axis >= norm(attrInt(node, 'axis', -1), rank)) return unknown('normalises over the channel axis (removing a channel would change the statistics)');
      if (ins.slice(1).some((t) => t)) return unknown('takes channels in a parameter input');
      return this.set(out, x);
    }
    if (op === 'Softmax' || op === 'LogSoftmax' || op === 'Hardmax') {
      const rank = this.shape(node.input[0])?.length;
      if (!x || rank === undefined) return unknown('has an unknown input shape');
      const axis = norm(attrInt(node, 'axis', -1), rank);
      if (x.axis === axis) return unknown('normalises over the channel axis');
      return this.set(out, x);
    }
    if (SPATIAL_POOL.has(op)) {
      if (!x || x.axis !== 1) return unknown('pools over the channel axis');
      if (node.output.length > 1 && node.output[1]) return unknown('returns indices');
      return this.set(out, x);
    }
    if (op === 'Resize' || op === 'Upsample') {
      const a = this.shape(node.input[0]);
      const b = this.shape(out);
      if (!x || !a || !b || a[x.axis] !== b[x.axis] || ins.slice(1).some((t) => t)) return unknown('may resize the channel axis');
      return this.set(out, x);
    }
    if (REDUCE.has(op)) return this.reduce(node, x, unknown);
    if (BROADCAST.has(op)) return this.broadcast(node, ins, unknown);
    if (op === 'Concat') return this.concat(node, ins, unknown);
    if (op === 'Flatten') return this.flatten(node, x, unknown);
    if (op === 'Reshape') return this.reshape(node, ins, unknown);
    if (op === 'Transpose') {
      const perm = attrInts(node, 'perm') ?? this.shape(node.input[0])?.map((_, i, a) => a.length - 1 - i);
      if (!x || !perm) return unknown('has an unknown permutation');
      return this.set(out, { axis: perm.indexOf(x.axis), layout: x.layout });
    }
    if (op === 'Squeeze' || op === 'Unsqueeze') return this.squeeze(node, ins, unknown);
    if (op === 'Pad') {
      const rank = this.shape(node.input[0])?.length;
      const pads = attrInts(node, 'pads') ?? this.knownInts(node.input[1]);
      const axes = node.input[3] ? this.knownInts(node.input[3]) : undefined;
      if (!x || !pads || rank === undefined || ins.slice(1).some((t) => t)) return unknown('has pads that are not constant');
      const padded = axes ? axes.map((a) => norm(a, rank)) : [...Array(rank).keys()];
      const k = padded.indexOf(x.axis);
      if (k >= 0 && (pads[k] !== 0 || pads[k + padded.length] !== 0)) return unknown('pads the channel axis');
      return this.set(out, x);
    }
    if (op === 'Split') return this.split(node, x, unknown);
    if (op === 'Slice') return this.slice(node, ins, unknown);
    if (op === 'Gather') {
      const rank = this.shape(node.input[0])?.length;
      const idx = this.shape(node.input[1]);
      if (!x || ins[1] || rank === undefined || !idx) return unknown('gathers along an unknown axis');
      const axis = norm(attrInt(node, 'axis', 0), rank);
      if (axis === x.axis) return unknown('gathers along the channel axis');
      return this.set(out, { axis: x.axis < axis ? x.axis : x.axis - 1 + idx.length, layout: x.layout });
    }
    if (op === 'Shape') {
      // harmless when only non-channel dims are read (the batch size for a dynamic Reshape)
      const rank = this.shape(node.input[0])?.length;
      const readers = this.index.consumersOf(out);
      const safe = x && rank !== undefined && readers.every((g) => {
        if (g.opType !== 'Gather' || g.input[0] !== out) return false;
        const idx = this.knownInts(g.input[1]);
        return idx !== undefined && idx.every((i) => norm(i, rank) !== x.axis);
      });
      if (!safe) unknown('reads the channel count (shape arithmetic)');
      return;
    }
    unknown('is not understood by the channel analysis');
  }

  private conv(node: NodeProto, x: Tracked | undefined): void {
    const w = this.constant(node.input[1]);
    const label = nodeLabel(node);
    const group = attrInt(node, 'group', 1);
    const dims = w ? tensorDims(w.tensor) : undefined;
    if (!w || !dims) {
      if (x) this.poison(x.layout, `${label} has a weight that is not constant`);
      return;
    }
    const cout = dims[0];
    const cinPerGroup = dims[1];
    if (x && x.axis !== 1) {
      this.poison(x.layout, `${label} reads channels on axis ${x.axis}`);
      return;
    }
    if (group === 1) {
      if (x) this.use(node, node.input[1], 1, x.layout, 'fanin', { ...x, name: node.input[0] });
      const layout = this.fresh(node, cout);
      this.use(node, node.input[1], 0, layout, 'param');
      if (node.input[2]) this.use(node, node.input[2], 0, layout, 'param');
      this.set(node.output[0], { axis: 1, layout });
      return;
    }
    // depthwise (one filter per input channel): the output channels are the input channels
    if (cinPerGroup === 1 && cout === group && x && layoutSize(x.layout) === group) {
      this.use(node, node.input[1], 0, x.layout, 'param');
      if (node.input[2]) this.use(node, node.input[2], 0, x.layout, 'param');
      this.addRewrite(node, { attr: 'group' }, 0, x.layout);
      this.set(node.output[0], { axis: 1, layout: x.layout });
      return;
    }
    const why = cinPerGroup === 1 && cout === group && !x
      ? `${label} is a depthwise convolution whose input channels come from ops the analysis could not follow`
      : `${label} is a grouped convolution (group=${group}, ${cinPerGroup} input channels per group); pruning it would break the grouping`;
    if (x) this.poison(x.layout, why);
    this.set(node.output[0], { axis: 1, layout: this.fresh(node, cout, why) });
  }

  private convTranspose(node: NodeProto, x: Tracked | undefined): void {
    const w = this.constant(node.input[1]);
    const label = nodeLabel(node);
    if (!w || attrInt(node, 'group', 1) !== 1 || (x && x.axis !== 1)) {
      if (x) this.poison(x.layout, `${label} is a grouped or non-constant transposed convolution`);
      return;
    }
    const dims = tensorDims(w.tensor);
    if (x) this.use(node, node.input[1], 0, x.layout, 'fanin', { ...x, name: node.input[0] });
    const layout = this.fresh(node, dims[1]);
    this.use(node, node.input[1], 1, layout, 'param');
    if (node.input[2]) this.use(node, node.input[2], 0, layout, 'param');
    this.set(node.output[0], { axis: 1, layout });
  }

  private gemm(node: NodeProto, ins: (Tracked | undefined)[]): void {
    const label = nodeLabel(node);
    const [a, b, c] = ins;
    const w = this.constant(node.input[1]);
    if (b || c || !w || attrInt(node, 'transA', 0) !== 0) {
      if (a) this.poison(a.layout, `${label} (Gemm) has a non-constant or transposed operand`);
      if (b) this.poison(b.layout, `${label} (Gemm) multiplies two activations`);
      return;
    }
    const transB = attrInt(node, 'transB', 0) === 1;
    const dims = tensorDims(w.tensor);
    const outUnits = transB ? dims[0] : dims[1];
    if (a) {
      if (a.axis !== 1) return this.poison(a.layout, `${label} (Gemm) reads channels on axis ${a.axis}`);
      this.use(node, node.input[1], transB ? 1 : 0, a.layout, 'fanin', { ...a, name: node.input[0] });
    }
    const layout = this.fresh(node, outUnits);
    this.use(node, node.input[1], transB ? 0 : 1, layout, 'param');
    const bias = node.input[2] ? this.constant(node.input[2]) : undefined;
    if (node.input[2] && !bias) this.poison(layout, `${label} (Gemm) has a non-constant bias`);
    if (bias) {
      const bd = tensorDims(bias.tensor);
      if (bd.length > 0 && bd[bd.length - 1] === outUnits && outUnits !== 1) this.use(node, node.input[2], bd.length - 1, layout, 'param');
      else if (bd.length === 2 && bd[0] !== 1) this.poison(layout, `${label} (Gemm) has a per-row bias`);
    }
    this.set(node.output[0], { axis: 1, layout });
  }

  private matmul(node: NodeProto, ins: (Tracked | undefined)[]): void {
    const label = nodeLabel(node);
    const [a, b] = ins;
    const wb = this.constant(node.input[1]);
    const rankA = this.shape(node.input[0])?.length;
    if (wb && tensorDims(wb.tensor).length === 2 && !b && rankA !== undefined && rankA >= 2) {
      const dims = tensorDims(wb.tensor);
      if (a) {
        if (a.axis !== rankA - 1) return this.poison(a.layout, `${label} (MatMul) reads channels on a batch or row axis`);
        this.use(node, node.input[1], 0, a.layout, 'fanin', { ...a, name: node.input[0] });
      }
      const layout = this.fresh(node, dims[1]);
      this.use(node, node.input[1], 1, layout, 'param');
      this.set(node.output[0], { axis: rankA - 1, layout });
      return;
    }
    const why = a && b ? 'multiplies two activations (attention scores)' : rankA === undefined ? 'has an input of unknown shape' : 'has an operand layout the analysis does not follow';
    if (a) this.poison(a.layout, `${label} (MatMul) ${why}`);
    if (b) this.poison(b.layout, `${label} (MatMul) ${why}`);
    // a constant weight still produces hidden units: report them as a skipped group rather than not at all
    if (wb && !b && tensorDims(wb.tensor).length === 2) {
      const layout = this.fresh(node, tensorDims(wb.tensor)[1], `${label} (MatMul) ${why}`);
      this.use(node, node.input[1], 1, layout, 'param');
    }
  }

  private reduce(node: NodeProto, x: Tracked | undefined, unknown: (w: string) => void): void {
    const rank = this.shape(node.input[0])?.length;
    if (!x || rank === undefined) return unknown('has an unknown input shape');
    const axesIn = attrInts(node, 'axes') ?? (node.input[1] ? this.knownInts(node.input[1]) : undefined);
    if (node.input[1] && !axesIn) return unknown('has axes that are not constant');
    const axes = (axesIn ?? [...Array(rank).keys()]).map((a) => norm(a, rank));
    if (axes.length === 0 && attrInt(node, 'noop_with_empty_axes', 0) === 1) return this.set(node.output[0], x);
    if (axes.length === 0 || axes.includes(x.axis)) return unknown('reduces over the channel axis');
    const keep = attrInt(node, 'keepdims', 1) === 1;
    const axis = keep ? x.axis : x.axis - axes.filter((a) => a < x.axis).length;
    this.set(node.output[0], { axis, layout: x.layout });
  }

  private broadcast(node: NodeProto, ins: (Tracked | undefined)[], unknown: (w: string) => void): void {
    const outShape = this.shape(node.output[0]);
    if (!outShape) return unknown('has an unknown output shape');
    const rank = outShape.length;
    let result: Tracked | undefined;
    for (let i = 0; i < ins.length; i++) {
      const t = ins[i];
      if (!t) continue;
      const r = this.shape(node.input[i])?.length;
      if (r === undefined) return unknown('has an unknown input shape');
      const here = { axis: t.axis + rank - r, layout: t.layout };
      if (!result) result = here;
      else if (result.axis !== here.axis) return unknown('combines channels on different axes');
      else if (!this.unify(result.layout, here.layout, `${nodeLabel(node)} (${node.opType})`)) return;
    }
    if (!result) return;
    const size = layoutSize(result.layout);
    for (let i = 0; i < ins.length; i++) {
      if (ins[i] || !node.input[i]) continue;
      const s = this.shape(node.input[i]);
      if (!s) return unknown('has an operand of unknown shape');
      const k = result.axis - (rank - s.length);
      if (k < 0 || s[k] === 1) continue;
      if (s[k] !== size) return unknown('broadcasts an operand of another size over the channel axis');
      const c = this.constant(node.input[i]);
      if (!c) return unknown('adds an activation that carries channels the analysis cannot follow');
      if (!this.use(node, node.input[i], k, result.layout, 'param')) return;
    }
    this.set(node.output[0], result);
  }

  private concat(node: NodeProto, ins: (Tracked | undefined)[], unknown: (w: string) => void): void {
    const rank = this.shape(node.output[0])?.length;
    if (rank === undefined) return unknown('has an unknown output shape');
    const axis = norm(attrInt(node, 'axis', 0), rank);
    const trackedAxes = new Set(ins.filter((t) => t).map((t) => t!.axis));
    if (trackedAxes.size > 1) return unknown('concatenates tensors with channels on different axes');
    const [tAxis] = trackedAxes;
    if (tAxis !== axis) {
      // joined along another axis (tokens): every input must carry the same channels
      if (ins.some((t) => !t)) return unknown('joins a tensor whose channels the analysis cannot follow');
      for (let i = 1; i < ins.length; i++) if (!this.unify(ins[0]!.layout, ins[i]!.layout, `${nodeLabel(node)} (Concat)`)) return;
      return this.set(node.output[0], ins[0]);
    }
    const layout: Layout = [];
    for (let i = 0; i < ins.length; i++) {
      const t = ins[i];
      if (t) layout.push(...t.layout);
      else {
        const s = this.shape(node.input[i]);
        if (!s) return unknown('joins an input of unknown shape');
        // fixed channels from an input the analysis does not own: they stay, their neighbours may go
        if (s[axis] > 0) layout.push(...this.fresh(node, s[axis], `${nodeLabel(node)}: channels from '${node.input[i]}' are not produced by a prunable layer`));
      }
    }
    this.set(node.output[0], { axis, layout });
  }

  private flatten(node: NodeProto, x: Tracked | undefined, unknown: (w: string) => void): void {
    const s = this.shape(node.input[0]);
    if (!x || !s) return unknown('has an unknown input shape');
    const axis = norm(attrInt(node, 'axis', 1), s.length);
    if (x.axis < axis) return this.set(node.output[0], x);
    if (x.axis !== axis) return unknown('flattens the channel axis into the middle of a dimension');
    this.set(node.output[0], { axis: 1, layout: withRepeat(x.layout, prod(s.slice(axis + 1))) });
  }

  private reshape(node: NodeProto, ins: (Tracked | undefined)[], unknown: (w: string) => void): void {
    const x = ins[0];
    const inS = this.shape(node.input[0]);
    const outS = this.shape(node.output[0]);
    if (!x || ins[1] || !inS || !outS) return unknown('has an unknown shape');
    const a = x.axis;
    const tail = prod(inS.slice(a + 1));
    // the channel axis and everything after it merge into the last output axis (Flatten written as Reshape)
    if (outS.length >= 1 && prod(outS.slice(0, -1)) === prod(inS.slice(0, a)) && sameDims(outS.slice(0, -1), inS.slice(0, a))) {
      const k = outS.length - 1;
      const t = this.targetElement(node, k);
      if (!t) return unknown('has a computed target shape that would need the channel count');
      if (t.value === 0) return unknown('copies the channel dimension by position');
      if (t.value !== -1) this.rewrites.push({ ...t.rewrite, layout: withRepeat(x.layout, tail) });
      return this.set(node.output[0], { axis: k, layout: withRepeat(x.layout, tail) });
    }
    // dims up to the channel axis unchanged, only later dims regrouped ([B,C,H,W] -> [B,C,H*W])
    if (outS.length > a && sameDims(outS.slice(0, a + 1), inS.slice(0, a + 1)) && prod(outS.slice(a + 1)) === tail) {
      const t = this.targetElement(node, a);
      if (!t) return unknown('has a computed target shape that would need the channel count');
      if (t.value !== -1 && t.value !== 0) this.rewrites.push({ ...t.rewrite, layout: x.layout });
      return this.set(node.output[0], { axis: a, layout: x.layout });
    }
    // the channel axis survives unchanged with the same trailing dims ([B,T,C] <-> [B*T,C])
    const k = outS.length - (inS.length - a);
    if (k >= 0 && outS[k] === inS[a] && sameDims(outS.slice(k + 1), inS.slice(a + 1)) && prod(outS.slice(0, k)) === prod(inS.slice(0, a))) {
      const t = this.targetElement(node, k);
      if (!t) return unknown('has a computed target shape that would need the channel count');
      if (t.value !== -1 && t.value !== 0) this.rewrites.push({ ...t.rewrite, layout: x.layout });
      else if (t.value === 0 && k !== a) return unknown('copies a dimension by position');
      return this.set(node.output[0], { axis: k, layout: x.layout });
    }
    // the channel axis splits into [heads, head width] (multi-head attention): heads are pruned whole
    if (outS.length === inS.length + 1 && sameDims(outS.slice(0, a), inS.slice(0, a)) && outS[a] * outS[a + 1] === inS[a] && sameDims(outS.slice(a + 2), inS.slice(a + 1))) {
      const d = outS[a + 1];
      if (x.layout.some((sg) => sg.repeat !== 1 || sg.start % d !== 0 || sg.len % d !== 0)) return unknown('splits channels into heads across channel blocks');
      const t = this.targetElement(node, a);
      if (!t) return unknown('has a computed head count the analysis cannot rewrite');
      for (const sg of x.layout) this.spaces.setBlock(sg.space, d);
      if (t.value !== -1) this.rewrites.push({ ...t.rewrite, layout: x.layout, divisor: d });
      return this.set(node.output[0], { axis: a, layout: x.layout, block: d, dAxis: a + 1 });
    }
    unknown('splits or merges the channel axis (e.g. a channel shuffle)');
  }

  /**
   * Where element `k` of a Reshape target lives: the constant itself, or one constant part of a Concat that
   * builds the target from the batch size (dynamic-batch exports). Undefined when it is computed.
   */
  private targetElement(node: NodeProto, k: number): { value: number; rewrite: Omit<DimRewrite, 'layout'> } | undefined {
    const name = node.input[1];
    const direct = this.ints(name);
    if (direct) return { value: direct[k], rewrite: { node: this.nodeIndex.get(node)!, target: { input: 1 }, element: k } };
    const cat = this.index.producer.get(name);
    if (!cat || cat.opType !== 'Concat') return undefined;
    let pos = 0;
    for (let i = 0; i < cat.input.length; i++) {
      const len = this.shape(cat.input[i])?.[0];
      if (len === undefined) return undefined;
      if (k < pos + len) {
        const part = this.ints(cat.input[i]);
        if (part) return { value: part[k - pos], rewrite: { node: this.nodeIndex.get(cat)!, target: { input: i }, element: k - pos } };
        // torch writes each dim as Unsqueeze(scalar constant)
        const u = this.index.producer.get(cat.input[i]);
        const scalar = u?.opType === 'Unsqueeze' && len === 1 ? this.ints(u.input[0]) : undefined;
        if (!u || !scalar || scalar.length !== 1) return undefined;
        return { value: scalar[0], rewrite: { node: this.nodeIndex.get(u)!, target: { input: 0 }, element: 0 } };
      }
      pos += len;
    }
    return undefined;
  }

  /** Ops inside multi-head attention, where a tracked axis counts heads. */
  private headOp(node: NodeProto, ins: (Tracked | undefined)[], unknown: (w: string) => void): void {
    const op = node.opType;
    const x = ins[0];
    const out = node.output[0];
    if (op === 'Transpose') {
      const perm = attrInts(node, 'perm');
      if (!x || !perm) return unknown('has an unknown permutation');
      return this.set(out, { ...x, axis: perm.indexOf(x.axis), dAxis: x.dAxis === undefined ? undefined : perm.indexOf(x.dAxis) });
    }
    if (op === 'Cast' || op === 'Identity' || op === 'Dropout') return this.set(out, x);
    if (op === 'Softmax' || op === 'LogSoftmax') {
      const rank = this.shape(node.input[0])?.length;
      if (!x || rank === undefined) return unknown('has an unknown input shape');
      const axis = norm(attrInt(node, 'axis', -1), rank);
      if (axis === x.axis || axis === x.dAxis) return unknown('normalises over heads or head channels');
      return this.set(out, x);
    }
    if (op === 'Mul' || op === 'Div' || op === 'Add' || op === 'Sub') {
      // scaling by 1/sqrt(d) or adding a bias that does not vary over heads
      const tracked = ins.filter((t) => t);
      const rank = this.shape(out)?.length;
      if (tracked.length !== 1 || !x || rank === undefined || this.shape(node.input[0])?.length !== rank) return unknown('combines heads with another tensor');
      const other = this.shape(node.input[1]);
      const c = this.constant(node.input[1]);
      if (!other || !c) return unknown('combines heads with a non-constant tensor');
      const at = (ax: number | undefined) => (ax === undefined ? 1 : (other[ax - (rank - other.length)] ?? 1));
      if (at(x.axis) !== 1 || at(x.dAxis) !== 1) return unknown('combines heads with a per-head constant');
      return this.set(out, x);
    }
    if (op === 'MatMul') {
      const [a, b] = ins;
      const ra = this.shape(node.input[0])?.length;
      const rb = this.shape(node.input[1])?.length;
      if (!a || !b || ra === undefined || rb === undefined || ra !== rb || a.axis !== b.axis || a.axis >= ra - 2) return unknown('mixes heads in a way the analysis does not follow');
      // Q @ K^T contracts the head width: Q's d is its last axis, K^T's is its row axis
      if (a.dAxis === ra - 1 && b.dAxis === rb - 2) {
        if (!this.unify(a.layout, b.layout, `${nodeLabel(node)} (Q x K)`)) return;
        return this.set(out, { axis: a.axis, layout: a.layout, block: a.block });
      }
      // scores @ V keeps V's head width as the last axis
      if (a.dAxis === undefined && b.dAxis === rb - 1) {
        if (!this.unify(a.layout, b.layout, `${nodeLabel(node)} (scores x V)`)) return;
        return this.set(out, { axis: a.axis, layout: b.layout, block: b.block, dAxis: ra - 1 });
      }
      return unknown('mixes heads in a way the analysis does not follow');
    }
    if (op === 'Reshape') {
      // [.., heads, d, ..] merge back into channels
      const inS = this.shape(node.input[0]);
      const outS = this.shape(out);
      if (!x || x.dAxis !== x.axis + 1 || !inS || !outS || ins[1]) return unknown('reshapes heads in a way the analysis does not follow');
      const a = x.axis;
      if (outS.length === inS.length - 1 && sameDims(outS.slice(0, a), inS.slice(0, a)) && outS[a] === inS[a] * inS[a + 1] && sameDims(outS.slice(a + 1), inS.slice(a + 2))) {
        const t = this.targetElement(node, a);
        if (!t) return unknown('has a computed channel count the analysis cannot rewrite');
        if (t.value !== -1) this.rewrites.push({ ...t.rewrite, layout: x.layout });
        return this.set(out, { axis: a, layout: x.layout });
      }
      return unknown('reshapes heads in a way the analysis does not follow');
    }
    unknown('is not understood inside attention heads');
  }

  private squeeze(node: NodeProto, ins: (Tracked | undefined)[], unknown: (w: string) => void): void {
    const x = ins[0];
    const inS = this.shape(node.input[0]);
    const outS = this.shape(node.output[0]);
    if (!x || !inS || !outS || ins[1]) return unknown('has an unknown shape');
    const axesIn = attrInts(node, 'axes') ?? this.knownInts(node.input[1]);
    if (node.opType === 'Squeeze') {
      const axes = (axesIn ?? inS.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)).map((v) => norm(v, inS.length));
      if (axes.includes(x.axis)) return unknown('squeezes the channel axis');
      return this.set(node.output[0], { axis: x.axis - axes.filter((v) => v < x.axis).length, layout: x.layout });
    }
    if (!axesIn) return unknown('has axes that are not constant');
    const axes = axesIn.map((v) => norm(v, outS.length)).sort((p, q) => p - q);
    let axis = x.axis;
    for (const v of axes) if (v <= axis) axis++;
    this.set(node.output[0], { axis, layout: x.layout });
  }

  private split(node: NodeProto, x: Tracked | undefined, unknown: (w: string) => void): void {
    const s = this.shape(node.input[0]);
    if (!x || !s) return unknown('has an unknown shape');
    const axis = norm(attrInt(node, 'axis', 0), s.length);
    if (axis !== x.axis) {
      for (const o of node.output) this.set(o, x);
      return;
    }
    const fromInput = node.input[1] ? this.ints(node.input[1]) : undefined;
    if (node.input[1] && !fromInput) return unknown('has split sizes that are not constant');
    const sizes = fromInput ?? attrInts(node, 'split') ?? node.output.map((o) => this.shape(o)?.[axis] ?? -1);
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
      this.addRewrite(node, target, i, p);
      this.set(node.output[i], { axis, layout: p });
    });
  }

  private slice(node: NodeProto, ins: (Tracked | undefined)[], unknown: (w: string) => void): void {
    const x = ins[0];
    const s = this.shape(node.input[0]);
    if (!x || !s || ins.slice(1).some((t) => t)) return unknown('has an unknown shape');
    const fromAttr = node.input.length < 3;
    const starts = fromAttr ? attrInts(node, 'starts') : this.ints(node.input[1]);
    const ends = fromAttr ? attrInts(node, 'ends') : this.ints(node.input[2]);
    const axesV = fromAttr ? attrInts(node, 'axes') : node.input[3] ? this.ints(node.input[3]) : undefined;
    const steps = !fromAttr && node.input[4] ? this.ints(node.input[4]) : undefined;
    if (!starts || !ends || (!fromAttr && node.input[3] && !axesV)) return unknown('has bounds that are not constant');
    const axes = (axesV ?? starts.map((_, i) => i)).map((v) => norm(v, s.length));
    const k = axes.indexOf(x.axis);
    if (k < 0) return this.set(node.output[0], x);
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
    this.addRewrite(node, { input: 1 }, k, before);
    this.addRewrite(node, { input: 2 }, k, [...before, ...part]);
    this.set(node.output[0], { axis: x.axis, layout: part });
  }

  /** A constant we slice must not also feed a node that did not register the slice. */
  private checkConstantConsumers(): void {
    const readers = new Map<string, Set<number>>();
    const axesOf = new Map<string, Layout[]>();
    for (const u of this.uses) {
      let r = readers.get(u.tensor);
      if (!r) readers.set(u.tensor, (r = new Set()));
      r.add(u.node);
      const l = axesOf.get(u.tensor) ?? [];
      l.push(u.layout);
      axesOf.set(u.tensor, l);
    }
    for (const [name, nodes] of readers) {
      for (const reader of this.finalReaders(name)) {
        if (!nodes.has(this.nodeIndex.get(reader)!)) {
          for (const l of axesOf.get(name)!) this.poison(l, `'${name}' is also read by ${nodeLabel(reader)} (${reader.opType})`);
        }
      }
      if (this.index.graphOutputs.has(name)) for (const l of axesOf.get(name)!) this.poison(l, `'${name}' is a graph output`);
    }
  }

  private finalReaders(name: string): NodeProto[] {
    const out: NodeProto[] = [];
    for (const c of this.index.consumersOf(name)) {
      if (c.opType === 'Identity') out.push(...this.finalReaders(c.output[0]));
      else out.push(c);
    }
    return out;
  }
}

function isProducer(op: string): boolean {
  return op === 'Conv' || op === 'ConvTranspose' || op === 'Gemm' || op === 'MatMul';
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
