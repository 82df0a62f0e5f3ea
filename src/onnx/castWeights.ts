/**
 * Weights stored in a low precision behind a Cast (bfloat16 or float16 initializers that a
 * `Cast(to=FLOAT)` widens before a float32 Conv or Gemm): every pass (pruning, surgery, reconstruction,
 * distillation) finds a layer's weight as the initializer its node reads, and here it reads a Cast. So
 * the pipeline works on a lifted copy, where each such weight is a float32 initializer of the same name
 * read directly, and every saved file is lowered back: the weight in its own type behind the same Cast.
 * The lift computes exactly what the Cast did, so the function is unchanged; what it lowers back is
 * rounded to the weight's own type, as the shipped file must hold it.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { GraphIndex, attrInt } from './graph.js';
import { NodeProtoSchema, StringStringEntryProtoSchema, type ModelProto } from './proto/onnx_pb.js';
import { DataType as DT, setTensorFloat32, tensorToFloat32 } from './tensor.js';

const LIFTED_KEY = 'prune-guard.lifted-weights';
const LOW_PRECISION: ReadonlySet<number> = new Set([DT.FLOAT16, DT.BFLOAT16, DT.DOUBLE]);

interface Lifted {
  /** the initializer, lifted under its own name */
  weight: string;
  /** its element type in the file */
  type: number;
  /** the Cast node, serialised as it was */
  cast: string;
  /** the Cast's position among the graph's nodes */
  at: number;
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

/**
 * Lift, in place, every low-precision initializer whose only reader is one `Cast(to=FLOAT)`: the Cast is
 * removed, its readers read the initializer, now float32. The record of what
 * to lower is kept in the model's metadata, so it survives every copy a pass makes.
 * Returns each lifted weight with its element type in the file.
 */
export function liftCastWeights(model: ModelProto): { weight: string; type: number }[] {
  const g = model.graph!;
  const index = new GraphIndex(g);
  const outputs = new Set(g.output.map((o) => o.name));
  const lifted: Lifted[] = [];
  const removed = new Set<number>();
  for (const t of g.initializer) {
    if (!LOW_PRECISION.has(t.dataType) || outputs.has(t.name)) continue;
    const readers = index.consumersOf(t.name);
    if (readers.length !== 1) continue;
    const cast = readers[0];
    if (cast.opType !== 'Cast' || attrInt(cast, 'to', 0) !== DT.FLOAT || outputs.has(cast.output[0]) || cast.input[0] !== t.name) continue;
    const at = g.node.indexOf(cast);
    lifted.push({ weight: t.name, type: t.dataType, cast: b64(toBinary(NodeProtoSchema, cast)), at });
    removed.add(at);
    const values = tensorToFloat32(t);
    t.dataType = DT.FLOAT;
    setTensorFloat32(t, values);
    for (const n of index.consumersOf(cast.output[0])) n.input = n.input.map((i) => (i === cast.output[0] ? t.name : i));
  }
  if (lifted.length === 0) return [];
  g.node = g.node.filter((_, i) => !removed.has(i));
  const previous = readLifted(model);
  setLifted(model, [...previous, ...lifted]);
  return lifted.map((l) => ({ weight: l.weight, type: l.type }));
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
 * Lower, in place, what liftCastWeights lifted: each weight back to its own type (rounded) behind its
 * Cast, at the Cast's old position or just before its first reader, whichever is earlier. A weight a
 * pass removed is skipped. The record is dropped, so the saved file carries nothing of this.
 */
export function lowerCastWeights(model: ModelProto): void {
  const lifted = readLifted(model);
  setLifted(model, []);
  const g = model.graph!;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  // in the order they stood: once the earlier Casts are back, an unchanged graph has each one's old prefix
  for (const l of [...lifted].sort((a, b) => a.at - b.at)) {
    const t = inits.get(l.weight);
    if (!t || t.dataType !== DT.FLOAT) continue;
    const values = tensorToFloat32(t);
    t.dataType = l.type;
    setTensorFloat32(t, values);
    const cast = fromBinary(NodeProtoSchema, Buffer.from(l.cast, 'base64'));
    const out = cast.output[0];
    let first = g.node.length;
    g.node.forEach((n, i) => {
      if (!n.input.includes(l.weight)) return;
      n.input = n.input.map((x) => (x === l.weight ? out : x));
      first = Math.min(first, i);
    });
    g.node.splice(Math.min(l.at, first), 0, create(NodeProtoSchema, cast));
  }
}
