import type { ModelProto, NodeProto, TensorProto } from '../../onnx/proto/onnx_pb.js';
import { GraphIndex, attrInt, nodeLabel } from '../../onnx/graph.js';
import { inferShapes } from '../../onnx/shapes.js';
import { FLOAT_TYPES, tensorDims, tensorToInts } from '../../onnx/tensor.js';
import { type Layout, Spaces, fullLayout, layoutSize } from './layout.js';
import type { SkipReason } from './skip.js';

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
 * that must become the kept size of `layout` / `divisor` × `multiplier` + `base`, or `fixed`.
 */
export interface DimRewrite {
  node: number;
  /** node input index holding an int tensor, or an attribute name */
  target: { input: number } | { attr: string };
  element: number;
  layout: Layout;
  base?: number;
  /** the element counts blocks (heads) of this many channels */
  divisor?: number;
  /** the element is this many times the count (heads merged with the batch: torch's [B·H, T, D]) */
  multiplier?: number;
  /** the element becomes this value whatever is kept (-1: the Reshape infers it) */
  fixed?: number;
  /**
   * the input is computed at run time from shapes that pruning does not change: its values, which the
   * surgery writes as a new constant (with the element changed) in place of the computation
   */
  computed?: { values: number[]; dims: number[] };
}

export interface DependencyGroup {
  /** union-find root; the key of keep masks */
  root: number;
  name: string;
  /** channels in the group */
  size: number;
  /** why it is left unpruned; undefined = prunable */
  skip?: SkipReason;
  /** channels go in blocks of this size (attention heads); 1 otherwise */
  block: number;
}

export interface DependencyAnalysis {
  spaces: Spaces;
  uses: AxisUse[];
  rewrites: DimRewrite[];
  groups: DependencyGroup[];
}

/**
 * Where a tensor's prunable channels sit. Outside attention: `layout` along `axis`. Inside attention,
 * `axis` counts heads of `block` channels each, `dAxis` holds the channels of one head, `outer` is a
 * leading dimension merged into the head axis (torch's [B·H, T, D]), and `parts` is the axis of a fused
 * projection whose index picks Q, K or V (each its own layout; `layout` is the first).
 */
export interface Tracked {
  axis: number;
  layout: Layout;
  block?: number;
  dAxis?: number;
  outer?: number;
  parts?: { axis: number; layouts: Layout[] };
}

/** A shape read that depends on pruned channels (see shapeTaint.ts), checked once every rewrite is known. */
export interface ShapeRead {
  tensor: string;
  elements: Set<number>;
  layouts: Layout[];
  node: NodeProto;
}

/** A Reshape target element that must follow the kept count, and how the surgery can write it. */
export interface TargetSlot {
  value: number;
  rewrite: Omit<DimRewrite, 'layout'>;
  /** the element depends on the batch (or another symbolic dim): only a -1 can replace it */
  dynamic?: boolean;
}

/** The state and shared helpers of one dependency analysis; the op rules live in depgraph.ts and attention.ts. */
export class Context {
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
  /** spaces made for one part of a fused projection (Q, K, V of one MatMul) */
  readonly fusedSpaces = new Set<number>();
  /** spaces of channels looked up in an embedding table, and the table */
  readonly embeddingSpaces = new Map<number, string>();
  readonly shapeReads: ShapeRead[] = [];
  /** `node:input` -> elements of a Reshape target that copy the reshaped tensor's own length back */
  readonly selfCopies = new Map<string, Set<number>>();
  private otherBatchValues?: Map<string, number[]>;

  constructor(readonly model: ModelProto) {
    this.index = new GraphIndex(model.graph!);
    const info = inferShapes(this.index, 2);
    this.shapes = info.shapes;
    this.values = info.values;
    model.graph!.node.forEach((n, i) => this.nodeIndex.set(n, i));
  }

  poison(layout: Layout, reason: SkipReason): void {
    for (const s of layout) this.spaces.poison(s.space, reason);
  }

  poisonAll(ins: readonly (Tracked | undefined)[], reason: SkipReason): void {
    for (const t of ins) if (t) for (const l of layoutsOf(t)) this.poison(l, reason);
  }

  /** The rule for an op or layout the analysis does not follow: every group reaching it stays whole. */
  unsupported(node: NodeProto, ins: readonly (Tracked | undefined)[], detail: string): void {
    this.poisonAll(ins, { kind: 'unsupported', node: nodeLabel(node), op: node.opType, detail });
  }

  shape(name: string): number[] | undefined {
    return name ? this.shapes.get(name) : undefined;
  }

  /** The constant behind a name, following Identity nodes (exporters alias shared parameters that way). */
  constant(name: string): { name: string; tensor: TensorProto } | undefined {
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

  ints(name: string | undefined): number[] | undefined {
    if (!name) return undefined;
    const c = this.constant(name);
    return c ? tensorToInts(c.tensor) : undefined;
  }

  /** a constant, or a small int tensor the shape pass could evaluate (read-only uses: never rewritten) */
  knownInts(name: string | undefined): number[] | undefined {
    return name ? (this.ints(name) ?? this.values.get(name)) : undefined;
  }

  /**
   * The values of a computed int tensor when they do not depend on the batch or any other symbolic
   * dimension (evaluated at two batch sizes), so a constant can stand in for the computation.
   */
  staticInts(name: string): number[] | undefined {
    const v = this.values.get(name);
    if (!v) return undefined;
    this.otherBatchValues ??= inferShapes(this.index, 3).values;
    const w = this.otherBatchValues.get(name);
    return w && w.length === v.length && w.every((x, i) => x === v[i]) ? v : undefined;
  }

  /** Register a slice of a constant; a constant shared by two readers must be sliced the same way. */
  use(node: NodeProto, name: string, axis: number, layout: Layout, role: 'param' | 'fanin', activation?: Tracked & { name: string }): boolean {
    const c = this.constant(name);
    if (!c || !FLOAT_TYPES.has(c.tensor.dataType)) {
      this.poison(layout, { kind: 'not-constant', node: nodeLabel(node), tensor: name });
      return false;
    }
    const dims = tensorDims(c.tensor);
    if (dims[axis] !== layoutSize(layout)) {
      this.poison(layout, { kind: 'unsupported', node: nodeLabel(node), op: node.opType, detail: `reads '${name}' whose axis ${axis} has ${dims[axis]} entries, expected ${layoutSize(layout)}` });
      return false;
    }
    let axes = this.constantAxes.get(c.name);
    if (!axes) this.constantAxes.set(c.name, (axes = new Map()));
    const prior = axes.get(axis);
    if (prior) this.unify(prior, layout, node, `'${c.name}' is shared by several nodes`);
    else axes.set(axis, layout);
    this.uses.push({
      tensor: c.name, axis, layout, role, node: this.nodeIndex.get(node)!,
      activation: activation?.name, activationAxis: activation?.axis,
    });
    return true;
  }

  fresh(node: NodeProto, size: number, skip?: SkipReason): Layout {
    return fullLayout(this.spaces.create(size, nodeLabel(node), skip), size);
  }

  set(name: string, t: Tracked | undefined): void {
    if (t && name) this.tracked.set(name, t);
  }

  /**
   * Two layouts whose channels meet element by element (a residual Add): their spaces become one group.
   * Only whole spaces can merge; anything else is refused rather than approximated.
   */
  unify(a: Layout, b: Layout, node: NodeProto, what: string): boolean {
    const ok =
      a.length === b.length &&
      a.every((sa, i) => {
        const sb = b[i];
        if (sa.len !== sb.len || sa.repeat !== sb.repeat) return false;
        if (this.spaces.root(sa.space) === this.spaces.root(sb.space)) return sa.start === sb.start;
        return sa.start === 0 && sb.start === 0 && this.spaces.size(sa.space) === sa.len && this.spaces.size(sb.space) === sb.len;
      });
    if (!ok) {
      const reason: SkipReason = { kind: 'unsupported', node: nodeLabel(node), op: node.opType, detail: `${what}: channel ranges of coupled tensors do not line up` };
      this.poison(a, reason);
      this.poison(b, reason);
      return false;
    }
    a.forEach((sa, i) => this.spaces.union(sa.space, b[i].space));
    return true;
  }

  addRewrite(node: NodeProto, target: DimRewrite['target'], element: number, layout: Layout, base = 0): void {
    this.rewrites.push({ node: this.nodeIndex.get(node)!, target, element, layout, base });
  }

  /**
   * Where element `k` of a Reshape target lives and how the surgery can rewrite it: the constant itself,
   * one constant part of a Concat that builds the target from the batch size (dynamic-batch exports),
   * torch's Unsqueeze(scalar) part, or a computed part (written as a constant when it does not depend on
   * the batch, else marked `dynamic`). Undefined when the element cannot be located.
   */
  targetSlot(node: NodeProto, k: number): TargetSlot | undefined {
    const name = node.input[1];
    const direct = this.ints(name);
    if (direct) return { value: direct[k], rewrite: { node: this.nodeIndex.get(node)!, target: { input: 1 }, element: k } };
    const cat = this.index.producer.get(name);
    if (!cat || cat.opType !== 'Concat') return this.computedSlot(node, 1, k);
    let pos = 0;
    for (let i = 0; i < cat.input.length; i++) {
      const len = this.shape(cat.input[i])?.[0] ?? (this.shape(cat.input[i])?.length === 0 ? 1 : undefined);
      if (len === undefined) return undefined;
      if (k < pos + len) {
        const part = this.ints(cat.input[i]);
        if (part) return { value: part[k - pos], rewrite: { node: this.nodeIndex.get(cat)!, target: { input: i }, element: k - pos } };
        // torch writes each dim as Unsqueeze(scalar constant)
        const u = this.index.producer.get(cat.input[i]);
        const scalar = u?.opType === 'Unsqueeze' && len === 1 ? this.ints(u.input[0]) : undefined;
        if (u && scalar && scalar.length === 1) return { value: scalar[0], rewrite: { node: this.nodeIndex.get(u)!, target: { input: 0 }, element: 0 } };
        return this.computedSlot(cat, i, k - pos);
      }
      pos += len;
    }
    return undefined;
  }

  /**
   * Whether element `k` of `node`'s Reshape target is a copy of the reshaped tensor's own length on an
   * axis `same` accepts (torch's x.reshape(x.shape[:2] + (-1,))): it then follows the pruned length by
   * itself, and that read of the shape is recorded as safe.
   */
  copiesOwnLength(node: NodeProto, k: number, same: (axis: number) => boolean): boolean {
    const src = this.lengthSource(node.input[1], k, 8);
    if (!src || src.tensor !== node.input[0] || !same(src.axis)) return false;
    const key = `${this.nodeIndex.get(node)}:1`;
    const set = this.selfCopies.get(key) ?? new Set<number>();
    set.add(k);
    this.selfCopies.set(key, set);
    return true;
  }

  /** The tensor and axis whose length element `k` of an int tensor copies, through Slice/Gather/Concat/Unsqueeze. */
  private lengthSource(name: string, k: number, depth: number): { tensor: string; axis: number } | undefined {
    const p = this.index.producer.get(name);
    if (!p || depth === 0) return undefined;
    const one = (i: number) => this.lengthSource(p.input[0], i, depth - 1);
    switch (p.opType) {
      case 'Shape': {
        const rank = this.shape(p.input[0])?.length;
        if (rank === undefined) return undefined;
        const start = attrInt(p, 'start', 0);
        return { tensor: p.input[0], axis: (start < 0 ? start + rank : start) + k };
      }
      case 'Unsqueeze':
      case 'Squeeze':
      case 'Cast':
      case 'Identity':
        return one(k);
      case 'Gather': {
        const idx = this.knownInts(p.input[1]);
        const n = this.shape(p.input[0])?.[0];
        if (!idx || n === undefined || attrInt(p, 'axis', 0) !== 0 || idx[k] === undefined) return undefined;
        return one(idx[k] < 0 ? idx[k] + n : idx[k]);
      }
      case 'Slice': {
        const starts = this.knownInts(p.input[1]);
        const steps = p.input[4] ? this.knownInts(p.input[4]) : [1];
        const n = this.shape(p.input[0])?.[0];
        if (!starts || !steps || starts.length !== 1 || n === undefined) return undefined;
        const start = Math.min(Math.max(starts[0] < 0 ? starts[0] + n : starts[0], 0), n);
        return one(start + k * steps[0]);
      }
      case 'Concat': {
        let pos = 0;
        for (const part of p.input) {
          const s = this.shape(part);
          const len = s ? (s.length === 0 ? 1 : s[0]) : undefined;
          if (len === undefined) return undefined;
          if (k < pos + len) return this.lengthSource(part, k - pos, depth - 1);
          pos += len;
        }
        return undefined;
      }
      default:
        return undefined;
    }
  }

  private computedSlot(node: NodeProto, input: number, k: number): TargetSlot | undefined {
    const name = node.input[input];
    const values = this.values.get(name);
    const dims = this.shape(name);
    if (!values || !dims || values[k] === undefined) return undefined;
    return {
      value: values[k],
      rewrite: { node: this.nodeIndex.get(node)!, target: { input }, element: k, computed: { values, dims } },
      dynamic: this.staticInts(name) === undefined,
    };
  }
}

/** every layout a tracked tensor carries (all parts of a fused projection) */
export function layoutsOf(t: Tracked): Layout[] {
  return t.parts ? t.parts.layouts : [t.layout];
}
