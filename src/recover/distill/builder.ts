import { create } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType as AT,
  AttributeProtoSchema,
  NodeProtoSchema,
  type AttributeProto,
  type NodeProto,
  type TensorProto,
} from '../../onnx/proto/onnx_pb.js';
import { makeFloatTensor, makeInt64Tensor } from '../../onnx/tensor.js';

export type AttrValue = number | number[] | string | { float: number } | { tensor: TensorProto };

function attribute(name: string, v: AttrValue): AttributeProto {
  if (typeof v === 'number') return create(AttributeProtoSchema, { name, type: AT.INT, i: BigInt(v) });
  if (Array.isArray(v)) return create(AttributeProtoSchema, { name, type: AT.INTS, ints: v.map(BigInt) });
  if (typeof v === 'string') return create(AttributeProtoSchema, { name, type: AT.STRING, s: new TextEncoder().encode(v) });
  if ('float' in v) return create(AttributeProtoSchema, { name, type: AT.FLOAT, f: v.float });
  return create(AttributeProtoSchema, { name, type: AT.TENSOR, t: v.tensor });
}

/**
 * Appends nodes and constants to a graph under construction, in the model's own opset (the forward
 * nodes are copied unchanged, so the backward ones must speak the same opset: ReduceSum takes its
 * axes as an attribute before 13 and as an input from 13 on).
 */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private counter = 0;
  private readonly taken: Set<string>;

  constructor(
    readonly opset: number,
    taken: Iterable<string>,
  ) {
    this.taken = new Set(taken);
  }

  fresh(hint: string): string {
    let name: string;
    do name = `pg_grad/${hint}_${this.counter++}`;
    while (this.taken.has(name));
    this.taken.add(name);
    return name;
  }

  /** One node; returns its output names (`outputs` of them). */
  ops(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, outputs = 1): string[] {
    const out = Array.from({ length: outputs }, () => this.fresh(opType));
    this.nodes.push(
      create(NodeProtoSchema, {
        name: this.fresh(`${opType}_node`),
        opType,
        input: [...inputs],
        output: out,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return out;
  }

  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}): string {
    return this.ops(opType, inputs, attrs, 1)[0];
  }

  floats(values: ArrayLike<number>, dims: readonly number[]): string {
    const name = this.fresh('const');
    this.initializers.push(makeFloatTensor(name, dims, Float32Array.from(values)));
    return name;
  }

  scalar(v: number): string {
    return this.floats([v], []);
  }

  int64s(values: readonly number[]): string {
    const name = this.fresh('ints');
    this.initializers.push(makeInt64Tensor(name, [values.length], values));
    return name;
  }

  reshape(x: string, dims: readonly number[]): string {
    return this.op('Reshape', [x, this.int64s(dims)]);
  }

  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }

  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }

  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }

  scale(x: string, k: number): string {
    return k === 1 ? x : this.mul(x, this.scalar(k));
  }

  transpose(x: string, perm: readonly number[]): string {
    return this.op('Transpose', [x], { perm: [...perm] });
  }

  reduceSum(x: string, axes: readonly number[], keepdims: boolean): string {
    if (this.opset >= 13) return this.op('ReduceSum', [x, this.int64s(axes)], { keepdims: keepdims ? 1 : 0 });
    return this.op('ReduceSum', [x], { axes: [...axes], keepdims: keepdims ? 1 : 0 });
  }

  /** Mean over `axes`, kept as size-1 dims (ReduceSum and a scale, so one spelling serves every opset). */
  reduceMeanKeep(x: string, axes: readonly number[], shape: readonly number[]): string {
    const n = axes.reduce((a, ax) => a * shape[ax], 1);
    return this.scale(this.reduceSum(x, axes, true), 1 / n);
  }

  /**
   * The gradient of a broadcast operand: sum `grad` (shaped `from`) over the axes that broadcasting
   * stretched, then reshape to the operand's own `to` shape.
   */
  unbroadcast(grad: string, from: readonly number[], to: readonly number[]): string {
    const lead = from.length - to.length;
    const axes: number[] = [];
    for (let i = 0; i < from.length; i++) {
      if (i < lead) axes.push(i);
      else if (to[i - lead] === 1 && from[i] !== 1) axes.push(i);
    }
    let g = grad;
    if (axes.length > 0) g = this.reduceSum(g, axes, true);
    const now = from.map((d, i) => (axes.includes(i) ? 1 : d));
    const same = now.length === to.length && now.every((d, i) => d === to[i]);
    return same ? g : this.reshape(g, to);
  }

  /** x[..., starts:ends] along the given axes: Slice with inputs from opset 10, with attributes before. */
  slice(x: string, starts: readonly number[], ends: readonly number[], axes: readonly number[]): string {
    if (this.opset < 10) return this.op('Slice', [x], { starts: [...starts], ends: [...ends], axes: [...axes] });
    return this.op('Slice', [x, this.int64s(starts), this.int64s(ends), this.int64s(axes)]);
  }

  /**
   * Gemm of two operands: C is optional from opset 11; before it, a zero C (broadcast from [1]) with
   * beta 0 stands in, so the product is the same.
   */
  gemm(a: string, b: string, attrs: Record<string, AttrValue> = {}): string {
    if (this.opset >= 11) return this.op('Gemm', [a, b], attrs);
    return this.op('Gemm', [a, b, this.floats([0], [1])], { ...attrs, beta: { float: 0 } });
  }

  /** `cond ? x : 0`: Where from opset 9; before it, x times the condition cast to float. */
  keepWhere(cond: string, x: string): string {
    if (this.opset >= 9) return this.op('Where', [cond, x, this.scalar(0)]);
    return this.mul(x, this.op('Cast', [cond], { to: 1 }));
  }

  /** `cond ? x : y`: Where from opset 9; before it, the two masked by the condition and its negation. */
  select(cond: string, x: string, y: string): string {
    if (this.opset >= 9) return this.op('Where', [cond, x, y]);
    return this.add(this.keepWhere(cond, x), this.keepWhere(this.op('Not', [cond]), y));
  }

  /**
   * x (shaped `from`) broadcast to `to`: Expand from opset 8; before it, a product with ones that span
   * only the broadcast axes (small: [1,1,H,W] for a pooled [N,C,1,1]).
   */
  expand(x: string, from: readonly number[], to: readonly number[]): string {
    if (this.opset >= 8) return this.op('Expand', [x, this.int64s(to)]);
    const ones = to.map((d, i) => (from[i - (to.length - from.length)] === d ? 1 : d));
    return this.mul(x, this.floats(new Float32Array(ones.reduce((a, d) => a * d, 1)).fill(1), ones));
  }

  /** Constant padding of each axis by `pads` (begins then ends): Pad with attributes before opset 11, with inputs from it. */
  pad(x: string, pads: readonly number[], value: number): string {
    if (this.opset < 11) return this.op('Pad', [x], { pads: [...pads], value: { float: value } });
    return this.op('Pad', [x, this.int64s(pads), this.scalar(value)]);
  }
}
