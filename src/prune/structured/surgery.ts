import { ModelEditor } from '../../onnx/edit.js';
import type { ModelProto, NodeProto } from '../../onnx/proto/onnx_pb.js';
import { attr } from '../../onnx/graph.js';
import { DataType, tensorDims, tensorToFloat32, tensorToInts } from '../../onnx/tensor.js';
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
  const ed = ModelEditor.copyOf(model);
  const g = ed.graph;
  const { spaces } = analysis;
  for (const [name, axes] of slicesByTensor(analysis.uses)) {
    const t = ed.constant(name);
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
    if (changed) ed.replaceInitializer(name, values, dims);
  }

  // element rewrites, collected per constant input so a shared constant is copied, never edited in place
  const edits = new Map<string, { node: NodeProto; input: number; before: number[]; values: number[]; dims: number[]; type: DataType.INT32 | DataType.INT64; computed: boolean }>();
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
      const t = ed.constant(node.input[r.target.input]);
      if (!t && !r.computed) throw new Error(`surgery: ${node.name} input ${r.target.input} is not constant`);
      const before = t ? tensorToInts(t) : r.computed!.values;
      const dims = t ? tensorDims(t) : r.computed!.dims;
      const type = t?.dataType === DataType.INT32 ? DataType.INT32 : DataType.INT64;
      edits.set(key, (e = { node, input: r.target.input, before, values: [...before], dims, type, computed: !t }));
    }
    e.values[r.element] = value;
  }
  for (const e of edits.values()) {
    if (!e.computed && e.before.every((v, i) => v === e.values[i])) continue;
    ed.setInput(e.node, e.input, ed.addIntInitializer(`${e.node.input[e.input]}_pruned`, e.dims, e.values, e.type));
  }

  // replaced shape constants
  ed.dropUnread(new Set(['Constant']), { initializers: true });
  // stale shapes would mislead runtimes; when nothing was removed they are still right and help shape counts
  if (keep.size > 0) ed.clearValueInfo();
  ed.redeclareInitializerInputs();
  return ed.model;
}

/**
 * The exactness reference: the ORIGINAL model with the dropped channels' contribution zeroed where they
 * are consumed (the fan-in slices of the next Conv/Gemm/MatMul). Physically removing the channels must
 * give the same outputs as this model, up to float rounding.
 */
export function zeroFanIn(model: ModelProto, analysis: DependencyAnalysis, keep: KeepMap): ModelProto {
  const ed = ModelEditor.copyOf(model);
  for (const [name, axes] of slicesByTensor(analysis.uses.filter((u) => u.role === 'fanin'))) {
    const t = ed.constant(name)!;
    const values = tensorToFloat32(t);
    const dims = tensorDims(t);
    for (const [axis, use] of axes) {
      const kept = new Set(keptIndices(use.layout, analysis.spaces, keep));
      const drop: number[] = [];
      for (let i = 0; i < dims[axis]; i++) if (!kept.has(i)) drop.push(i);
      zeroAlongAxis(values, dims, axis, drop);
    }
    ed.replaceInitializer(name, values);
  }
  return ed.model;
}
