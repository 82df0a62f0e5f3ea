import type { AttrValue } from '../../onnx/build.js';
import type { ModelEditor } from '../../onnx/edit.js';
import type { NodeProto } from '../../onnx/proto/onnx_pb.js';

export type { AttrValue };

/**
 * Appends nodes and constants to a graph through its editor, in the model's own opset (the forward
 * nodes are copied unchanged, so the backward ones must speak the same opset: ReduceSum takes its
 * axes as an attribute before 13 and as an input from 13 on). Every name it writes starts `pg_grad/`.
 */
export class GraphBuilder {
  readonly opset: number;
  /** the nodes this builder added, in order */
  readonly nodes: NodeProto[] = [];

  constructor(readonly editor: ModelEditor) {
    this.opset = editor.opset();
  }

  fresh(hint: string): string {
    return this.editor.fresh(`pg_grad/${hint}`);
  }

  /** One node; returns its output names (`outputs` of them). */
  ops(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, outputs = 1): string[] {
    const out = Array.from({ length: outputs }, () => this.fresh(opType));
    this.nodes.push(this.editor.addNode({ name: `pg_grad/${opType}_node`, opType, inputs, outputs: out, attrs }));
    return out;
  }

  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}): string {
    return this.ops(opType, inputs, attrs, 1)[0];
  }

  floats(values: ArrayLike<number>, dims: readonly number[]): string {
    return this.editor.addFloatInitializer('pg_grad/const', dims, Float32Array.from(values));
  }

  scalar(v: number): string {
    return this.floats([v], []);
  }

  int64s(values: readonly number[]): string {
    return this.editor.addIntInitializer('pg_grad/ints', [values.length], values);
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

  /** Gemm without a bias: C is optional from opset 11, before that a zero scalar (broadcast) stands in. */
  gemm(a: string, b: string, attrs: Record<string, AttrValue> = {}): string {
    return this.op('Gemm', this.opset >= 11 ? [a, b] : [a, b, this.scalar(0)], attrs);
  }

  /** x[..., starts:ends] along the given axes (Slice takes them as inputs from opset 10, as attributes before). */
  slice(x: string, starts: readonly number[], ends: readonly number[], axes: readonly number[]): string {
    if (this.opset >= 10) return this.op('Slice', [x, this.int64s(starts), this.int64s(ends), this.int64s(axes)]);
    return this.op('Slice', [x], { starts: [...starts], ends: [...ends], axes: [...axes] });
  }
}
