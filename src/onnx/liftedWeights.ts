/**
 * Weights an exporter left behind an op that only re-presents them: stored in a low precision and widened
 * by a `Cast(to=FLOAT)` (bfloat16 weights of a float32 model), or stored in another shape and given the
 * layer's by a `Reshape` with a constant shape (CNTK's MatMul weights). Every pass (pruning, surgery,
 * reconstruction, distillation) finds a layer's weight as the initializer its node reads, and here it
 * reads the Cast's or Reshape's output. So the pipeline works on a lifted copy, where each such weight is
 * a float32 initializer of the same name, in the layer's shape, read directly; every saved file is
 * lowered back: the weight in its own type and shape behind the same node. The lift computes exactly
 * what the node did, so the function is unchanged; what is lowered back is rounded to the weight's own
 * type. A weight behind a Reshape whose size a pass changed (structured surgery) stays in the layer's shape.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelEditor } from './edit.js';
import { GraphIndex, attrInt } from './graph.js';
import { NodeProtoSchema, StringStringEntryProtoSchema, TensorProtoSchema, ValueInfoProtoSchema, type ModelProto, type NodeProto, type TensorProto } from './proto/onnx_pb.js';
import { DataType as DT, numel, tensorDims, tensorToFloat32, tensorToInts } from './tensor.js';

const LIFTED_KEY = 'prune-guard.lifted-weights';
const LOW_PRECISION: ReadonlySet<number> = new Set([DT.FLOAT16, DT.BFLOAT16, DT.DOUBLE]);

/** What a lifted weight was behind. */
export type LiftedBy = 'Cast' | 'Reshape';

interface Lifted {
  weight: string;
  by: LiftedBy;
  /** its element type and shape in the file */
  type: number;
  dims: number[];
  /** the node it was behind, serialised as it was */
  node: string;
  /** the node's position among the graph's nodes */
  at: number;
  /** Reshape: its shape initializer (serialised, with its positions among the initializers and, before IR 4, the graph inputs), taken out while unused */
  shape?: { tensor: string; at: number; input?: { info: string; at: number } };
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
const bytes = (text: string): Uint8Array => Buffer.from(text, 'base64');

/** The dims a Reshape to `shape` gives a tensor of `dims` (0 copies the input dim, -1 takes the rest), or undefined. */
function reshaped(dims: readonly number[], shape: readonly number[], allowZero: boolean): number[] | undefined {
  const out = shape.map((d, i) => (d === 0 && !allowZero ? dims[i] : d));
  const free = out.filter((d) => d === -1).length;
  if (free > 1 || out.some((d) => d === undefined || d < -1)) return undefined;
  const known = out.filter((d) => d !== -1).reduce((a, d) => a * d, 1);
  if (free === 1) {
    if (known === 0 || numel([...dims]) % known !== 0) return undefined;
    return out.map((d) => (d === -1 ? numel([...dims]) / known : d));
  }
  return known === numel([...dims]) ? out : undefined;
}

/** How `node` re-presents initializer `t`, when it is one of the two forms lifted. */
function liftable(t: TensorProto, node: NodeProto, index: GraphIndex): { by: LiftedBy; dims: number[]; shape?: TensorProto } | undefined {
  if (node.input[0] !== t.name) return undefined;
  if (node.opType === 'Cast' && LOW_PRECISION.has(t.dataType) && attrInt(node, 'to', 0) === DT.FLOAT) return { by: 'Cast', dims: tensorDims(t) };
  if (node.opType === 'Reshape' && (t.dataType === DT.FLOAT || LOW_PRECISION.has(t.dataType))) {
    const shape = index.initializers.get(node.input[1]);
    if (!shape) return undefined;
    const dims = reshaped(tensorDims(t), tensorToInts(shape), attrInt(node, 'allowzero', 0) === 1);
    return dims ? { by: 'Reshape', dims, shape } : undefined;
  }
  return undefined;
}

/**
 * Lift, in place, every initializer whose only reader is a `Cast(to=FLOAT)` of a low-precision weight or
 * a `Reshape` to a constant shape: the node is removed, its readers read the initializer, now float32 in
 * the node's output shape. The record of what to lower is kept in the model's metadata, so it survives
 * every copy a pass makes. Returns each lifted weight with what it was behind and its type in the file.
 */
export function liftWeights(model: ModelProto): { weight: string; by: LiftedBy; type: number }[] {
  const ed = new ModelEditor(model);
  const g = ed.graph;
  const index = new GraphIndex(g);
  const lifted: Lifted[] = [];
  const behind: NodeProto[] = [];
  const unusedShapes = new Set<string>();
  for (const t of [...g.initializer]) {
    if (ed.isGraphOutput(t.name)) continue;
    const readers = index.consumersOf(t.name);
    if (readers.length !== 1 || ed.isGraphOutput(readers[0].output[0])) continue;
    const node = readers[0];
    const how = liftable(t, node, index);
    if (!how) continue;
    // positions as the file has them: nothing is removed until every weight is recorded
    const record: Lifted = { weight: t.name, by: how.by, type: t.dataType, dims: tensorDims(t), node: b64(toBinary(NodeProtoSchema, node)), at: g.node.indexOf(node) };
    // a shape nothing else reads is taken out too (onnxruntime warns of unused initializers) and put back on lowering
    if (how.shape && index.consumersOf(how.shape.name).length === 1 && !ed.isGraphOutput(how.shape.name)) {
      const inputAt = g.input.findIndex((i) => i.name === how.shape!.name);
      record.shape = { tensor: b64(toBinary(TensorProtoSchema, how.shape)), at: g.initializer.indexOf(how.shape), ...(inputAt >= 0 ? { input: { info: b64(toBinary(ValueInfoProtoSchema, g.input[inputAt])), at: inputAt } } : {}) };
      unusedShapes.add(how.shape.name);
    }
    lifted.push(record);
    behind.push(node);
    ed.retypeInitializer(t.name, tensorToFloat32(t), DT.FLOAT, how.dims);
    for (const n of index.consumersOf(node.output[0])) n.input.forEach((x, slot) => x === node.output[0] && ed.setInput(n, slot, t.name));
  }
  if (lifted.length === 0) return [];
  for (const node of behind) ed.removeNode(node);
  ed.removeInitializers(unusedShapes);
  setLifted(model, [...readLifted(model), ...lifted]);
  return lifted.map((l) => ({ weight: l.weight, by: l.by, type: l.type }));
}

function readLifted(model: ModelProto): Lifted[] {
  const entry = model.metadataProps.find((e) => e.key === LIFTED_KEY);
  return entry ? (JSON.parse(entry.value) as Lifted[]) : [];
}

function setLifted(model: ModelProto, lifted: Lifted[]): void {
  model.metadataProps = model.metadataProps.filter((e) => e.key !== LIFTED_KEY);
  if (lifted.length > 0) model.metadataProps.push(create(StringStringEntryProtoSchema, { key: LIFTED_KEY, value: JSON.stringify(lifted) }));
}

export function hasLiftedWeights(model: ModelProto): boolean {
  return model.metadataProps.some((e) => e.key === LIFTED_KEY);
}

/**
 * Lower, in place, what liftWeights lifted: each weight back to its own type (rounded) and shape behind
 * its node, at the node's old position or just before its first reader, whichever is earlier. A weight
 * a pass removed is skipped; one behind a Reshape whose size changed keeps the layer's shape and is read directly. The
 * record is dropped, so the saved file carries nothing of this.
 */
export function lowerWeights(model: ModelProto): void {
  const lifted = readLifted(model);
  setLifted(model, []);
  const ed = new ModelEditor(model);
  // in the order they stood: once the earlier nodes are back, an unchanged graph has each one's old prefix
  for (const l of [...lifted].sort((a, b) => a.at - b.at)) {
    const t = ed.initializer(l.weight);
    if (!t || t.dataType !== DT.FLOAT) continue;
    // a Cast keeps whatever shape the passes gave the weight; a Reshape's source shape holds only its old size
    if (l.by === 'Reshape' && numel(tensorDims(t)) !== numel(l.dims)) continue;
    ed.retypeInitializer(l.weight, tensorToFloat32(t), l.type, l.by === 'Reshape' ? l.dims : undefined);
    if (l.shape) {
      const input = l.shape.input && { decl: fromBinary(ValueInfoProtoSchema, bytes(l.shape.input.info)), at: l.shape.input.at };
      ed.restoreInitializer(fromBinary(TensorProtoSchema, bytes(l.shape.tensor)), l.shape.at, input);
    }
    const node = create(NodeProtoSchema, fromBinary(NodeProtoSchema, bytes(l.node)));
    const out = node.output[0];
    let first = ed.graph.node.length;
    for (const n of ed.consumers(l.weight)) {
      n.input.forEach((x, slot) => x === l.weight && ed.setInput(n, slot, out));
      first = Math.min(first, ed.graph.node.indexOf(n));
    }
    ed.restoreNode(node, Math.min(l.at, first));
  }
}
