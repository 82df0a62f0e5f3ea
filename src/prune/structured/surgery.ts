import { create } from '@bufbuild/protobuf';
import type { ModelProto, NodeProto, TensorProto } from '../../onnx/proto/onnx_pb.js';
import { TensorProtoSchema } from '../../onnx/proto/onnx_pb.js';
import { attr } from '../../onnx/graph.js';
import { cloneModel } from '../../onnx/model.js';
import { DataType, setTensorFloat32, tensorDims, tensorToFloat32, tensorToInts } from '../../onnx/tensor.js';
import type { AxisUse, DependencyAnalysis } from './depgraph.js';
import { type KeepMap, keptIndices, keptSize } from './layout.js';

/** Values of a tensor of shape `dims` with only `indices` kept along `axis`. */
export function takeAlongAxis(values: Float32Array, dims: readonly number[], axis: number, indices: readonly number[]): Float32Array {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const n = dims[axis];
  const out = new Float32Array(outer * indices.length * inner);
  let o = 0;
  for (let i = 0; i < outer; i++) {
    for (const k of indices) {
      const from = (i * n + k) * inner;
      out.set(values.subarray(from, from + inner), o);
      o += inner;
    }
  }
  return out;
}

/** Zero the entries at `indices` along `axis`, in place. */
export function zeroAlongAxis(values: Float32Array, dims: readonly number[], axis: number, indices: readonly number[]): void {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const n = dims[axis];
  for (let i = 0; i < outer; i++) for (const k of indices) values.fill(0, (i * n + k) * inner, (i * n + k + 1) * inner);
}

/** The TensorProto behind a constant name in `model`: an initializer or a Constant node's value. */
function findConstant(model: ModelProto, name: string): TensorProto | undefined {
  const g = model.graph!;
  const init = g.initializer.find((t) => t.name === name);
  if (init) return init;
  const node = g.node.find((n) => n.opType === 'Constant' && n.output[0] === name);
  return node ? attr(node, 'value')?.t : undefined;
}

/** one slicing per constant and axis (shared constants registered the same channels) */
function slicesByTensor(uses: readonly AxisUse[]): Map<string, Map<number, AxisUse>> {
  const out = new Map<string, Map<number, AxisUse>>();
  for (const u of uses) {
    let axes = out.get(u.tensor);
    if (!axes) out.set(u.tensor, (axes = new Map()));
    if (!axes.has(u.axis)) axes.set(u.axis, u);
  }
  return out;
}

/**
 * Structured surgery: a new, smaller dense model with the dropped channels of every group physically
 * removed from each coupled constant, and every constant that spells a channel count (Reshape targets,
 * Split sizes, Slice bounds, a depthwise Conv's `group`) rewritten. Node names are kept; intermediate
 * value_info is dropped because its shapes are stale (runtimes re-infer them).
 * `analysis` must come from `model` itself (node indices are shared).
 */
export function removeChannels(model: ModelProto, analysis: DependencyAnalysis, keep: KeepMap): ModelProto {
  const out = cloneModel(model);
  const g = out.graph!;
  const { spaces } = analysis;
  for (const [name, axes] of slicesByTensor(analysis.uses)) {
    const t = findConstant(out, name);
    if (!t) throw new Error(`surgery: constant '${name}' not found`);
    let values = tensorToFloat32(t);
    const dims = tensorDims(t);
    let changed = false;
    for (const [axis, use] of axes) {
      const idx = keptIndices(use.layout, spaces, keep);
      if (idx.length === dims[axis]) continue;
      values = takeAlongAxis(values, dims, axis, idx);
      dims[axis] = idx.length;
      changed = true;
    }
    if (changed) setTensorFloat32(t, values, dims);
  }

  // element rewrites, collected per constant input so a shared constant is copied, never edited in place
  const edits = new Map<string, { node: NodeProto; input: number; before: number[]; values: number[]; dims: number[]; dataType: number; computed: boolean }>();
  for (const r of analysis.rewrites) {
    const node = g.node[r.node];
    const value = r.fixed ?? (keptSize(r.layout, spaces, keep) / (r.divisor ?? 1)) * (r.multiplier ?? 1) + (r.base ?? 0);
    if ('attr' in r.target) {
      const a = attr(node, r.target.attr);
      if (!a) throw new Error(`surgery: ${node.name} has no attribute ${r.target.attr}`);
      if (r.target.attr === 'group') a.i = BigInt(value);
      else a.ints[r.element] = BigInt(value);
      continue;
    }
    const key = `${r.node}:${r.target.input}`;
    let e = edits.get(key);
    if (!e) {
      // a computed input (shape arithmetic pruning does not change) is replaced by a constant of its values
      const t = findConstant(out, node.input[r.target.input]);
      if (!t && !r.computed) throw new Error(`surgery: ${node.name} input ${r.target.input} is not constant`);
      const before = t ? tensorToInts(t) : r.computed!.values;
      const dims = t ? tensorDims(t) : r.computed!.dims;
      edits.set(key, (e = { node, input: r.target.input, before, values: [...before], dims, dataType: t?.dataType ?? DataType.INT64, computed: !t }));
    }
    e.values[r.element] = value;
  }
  for (const e of edits.values()) {
    if (!e.computed && e.before.every((v, i) => v === e.values[i])) continue;
    const name = uniqueName(out, `${e.node.input[e.input]}_pruned`);
    g.initializer.push(intTensor(name, e.dims, e.values, e.dataType));
    e.node.input[e.input] = name;
  }

  dropUnused(out);
  // stale shapes would mislead runtimes; when nothing was removed they are still right and help shape counts
  if (keep.size > 0) g.valueInfo = [];
  // older exporters list initializers as graph inputs: their declared shapes must follow the surgery
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  for (const i of g.input) {
    const t = inits.get(i.name);
    const shape = i.type?.value.case === 'tensorType' ? i.type.value.value.shape : undefined;
    if (t && shape) tensorDims(t).forEach((d, k) => { if (shape.dim[k]) shape.dim[k].value = { case: 'dimValue', value: BigInt(d) }; });
  }
  return out;
}

/**
 * The exactness reference: the ORIGINAL model with the dropped channels' contribution zeroed where they
 * are consumed (the fan-in slices of the next Conv/Gemm/MatMul). Physically removing the channels must
 * give the same outputs as this model, up to float rounding.
 */
export function zeroFanIn(model: ModelProto, analysis: DependencyAnalysis, keep: KeepMap): ModelProto {
  const out = cloneModel(model);
  for (const [name, axes] of slicesByTensor(analysis.uses.filter((u) => u.role === 'fanin'))) {
    const t = findConstant(out, name)!;
    const values = tensorToFloat32(t);
    const dims = tensorDims(t);
    for (const [axis, use] of axes) {
      const kept = new Set(keptIndices(use.layout, analysis.spaces, keep));
      const drop: number[] = [];
      for (let i = 0; i < dims[axis]; i++) if (!kept.has(i)) drop.push(i);
      zeroAlongAxis(values, dims, axis, drop);
    }
    setTensorFloat32(t, values);
  }
  return out;
}

function intTensor(name: string, dims: readonly number[], values: readonly number[], dataType: number): TensorProto {
  const raw = dataType === DataType.INT32
    ? new Uint8Array(Int32Array.from(values).buffer)
    : new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer);
  return create(TensorProtoSchema, { name, dataType: dataType === DataType.INT32 ? DataType.INT32 : DataType.INT64, dims: dims.map(BigInt), rawData: raw });
}

function uniqueName(model: ModelProto, base: string): string {
  const g = model.graph!;
  const taken = new Set<string>([...g.initializer.map((t) => t.name), ...g.node.flatMap((n) => n.output), ...g.input.map((i) => i.name)]);
  let name = base;
  for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
  return name;
}

/** Remove initializers and Constant nodes nothing reads any more (replaced shape constants). */
function dropUnused(model: ModelProto): void {
  const g = model.graph!;
  const dropped = new Set<string>();
  for (;;) {
    const read = new Set<string>([...g.node.flatMap((n) => n.input), ...g.output.map((o) => o.name)]);
    const before = g.node.length + g.initializer.length;
    g.node = g.node.filter((n) => n.opType !== 'Constant' || read.has(n.output[0]));
    for (const t of g.initializer) if (!read.has(t.name)) dropped.add(t.name);
    g.initializer = g.initializer.filter((t) => read.has(t.name));
    if (g.node.length + g.initializer.length === before) break;
  }
  g.input = g.input.filter((i) => !dropped.has(i.name));
}
