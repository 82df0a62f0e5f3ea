import * as fs from 'node:fs';
import * as path from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { readInputFile } from '../io/inputFile.js';
import { ModelProtoSchema, StringStringEntryProtoSchema, type ModelProto, type TensorProto } from './proto/onnx_pb.js';
import { isExternal } from './tensor.js';
import { modelChunks } from './streamSave.js';
import { TensorProto_DataLocation } from './proto/onnx_pb.js';

/** protobuf cannot encode a message over 2 GiB; such models must keep weights in external data files. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

export interface LoadedModel {
  proto: ModelProto;
  /** where it was read from; external-data locations resolve against its folder */
  path: string;
  bytes: number;
}

/**
 * Read an .onnx file. Every problem a user can cause (missing, truncated, not ONNX, external data
 * missing or escaping the model's folder) becomes a one-line UserError naming the file.
 */
export function loadModel(file: string): LoadedModel {
  const bytes = readInputFile(file, { expected: 'an .onnx model' });
  return { proto: parseModel(bytes, file), path: file, bytes: bytes.byteLength };
}

export function parseModel(bytes: Uint8Array, file: string): ModelProto {
  if (bytes.byteLength === 0) throw new UserError(`${file}: empty file; re-export the model`);
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes);
  } catch (e) {
    throw new UserError(`${file}: not a valid ONNX model (${describe(e)}); the file may be truncated or not ONNX, re-export it`);
  }
  checkStructure(proto, file);
  resolveExternalData(proto, file);
  return proto;
}

/**
 * protobuf decodes many byte strings "successfully" (a truncated file can end on a field boundary, a
 * random file can look like unknown fields), so check the parts of a model we rely on.
 */
function checkStructure(proto: ModelProto, file: string): void {
  const g = proto.graph;
  if (!g || proto.opsetImport.length === 0 || g.node.length === 0 || g.output.length === 0) {
    const missing = !g ? 'no graph' : proto.opsetImport.length === 0 ? 'no opset_import' : g.node.length === 0 ? 'no nodes' : 'no graph outputs';
    throw new UserError(`${file}: not a valid ONNX model (${missing}); the file may be truncated or not ONNX, re-export it`);
  }
  const known = new Set<string>(['']);
  for (const i of g.input) known.add(i.name);
  for (const t of g.initializer) known.add(t.name);
  for (const n of g.node) for (const o of n.output) known.add(o);
  for (const n of g.node) {
    for (const i of n.input) {
      if (!known.has(i)) {
        throw new UserError(`${file}: node '${n.name || n.opType}' reads '${i}', which no node, input or initializer provides; the file may be truncated, re-export it`);
      }
    }
  }
  for (const o of g.output) {
    if (!known.has(o.name)) throw new UserError(`${file}: graph output '${o.name}' is never produced; the file may be truncated, re-export it`);
  }
}

function externalEntry(t: TensorProto, key: string): string | undefined {
  return t.externalData.find((e) => e.key === key)?.value;
}

/**
 * Inline external-data tensors so every later stage sees plain raw_data. Locations are relative to the
 * model's folder and must stay inside it: a model is untrusted input and must not read /etc/passwd.
 */
function resolveExternalData(proto: ModelProto, file: string): void {
  const dir = path.dirname(path.resolve(file));
  const tensors = [...allTensors(proto)].filter(isExternal);
  if (tensors.length === 0) return;
  const realDir = fs.realpathSync(dir);
  // check every location and size first: a model over the protobuf limit is refused before gigabytes
  // of weights are read into memory
  const reads: { t: TensorProto; real: string; offset: number; length: number }[] = [];
  let total = 0;
  for (const t of tensors) {
    const location = externalEntry(t, 'location');
    if (!location) throw new UserError(`${file}: tensor '${t.name}' uses external data but has no location; re-export the model`);
    if (path.isAbsolute(location)) throw new UserError(`${file}: tensor '${t.name}' external data location '${location}' is absolute; it must be a path relative to the model's folder`);
    const target = path.resolve(dir, location);
    let real: string;
    try {
      real = fs.realpathSync(target);
    } catch {
      throw new UserError(`${file}: external data file '${location}' for tensor '${t.name}' not found next to the model; copy it beside ${path.basename(file)}`);
    }
    if (real !== realDir && !real.startsWith(realDir + path.sep)) {
      throw new UserError(`${file}: tensor '${t.name}' external data location '${location}' escapes the model's folder; keep external data beside the model`);
    }
    const stat = fs.statSync(real);
    if (!stat.isFile()) throw new UserError(`${file}: tensor '${t.name}' external data location '${location}' is not a file; re-export the model`);
    const size = stat.size;
    const offset = Number(externalEntry(t, 'offset') ?? 0);
    const length = externalEntry(t, 'length') !== undefined ? Number(externalEntry(t, 'length')) : size - offset;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
      throw new UserError(`${file}: tensor '${t.name}' asks for bytes ${offset}..${offset + length} of '${location}', which has ${size}; the external data file is truncated or does not belong to this model`);
    }
    total += length;
    reads.push({ t, real, offset, length });
  }
  if (total > PROTOBUF_LIMIT) {
    throw new UserError(
      `${file}: holds ${(total / 2 ** 30).toFixed(2)} GiB of weights in external data; prune-guard keeps a model in one protobuf file, which cannot exceed 2 GiB, so models this large are not supported yet; prune a smaller model or split it`,
    );
  }
  const handles = new Map<string, number>();
  try {
    for (const { t, real, offset, length } of reads) {
      let fd = handles.get(real);
      if (fd === undefined) {
        fd = fs.openSync(real, 'r');
        handles.set(real, fd);
      }
      const data = new Uint8Array(length);
      fs.readSync(fd, data, 0, length, offset);
      t.rawData = data;
      t.externalData = [];
      t.dataLocation = TensorProto_DataLocation.DEFAULT;
    }
  } finally {
    for (const fd of handles.values()) fs.closeSync(fd);
  }
}

function* allTensors(proto: ModelProto): Generator<TensorProto> {
  const g = proto.graph;
  if (!g) return;
  yield* g.initializer;
  for (const n of g.node) for (const a of n.attribute) if (a.t) yield a.t;
}

/**
 * Serialise and write atomically (temp file + rename), so a crash never leaves half a model. The
 * bytes are those of toBinary, but written tensor by tensor (modelChunks): the process never holds
 * the model and its whole serialisation at once.
 */
export function saveModel(proto: ModelProto, file: string): number {
  const { bytes, chunks } = modelChunks(proto);
  if (bytes > PROTOBUF_LIMIT) throw tooBig(file);
  writeFileAtomic(file, chunks());
  return bytes;
}

function tooBig(file: string): UserError {
  return new UserError(`${file}: the pruned model is over 2 GiB and cannot be one protobuf file; prune further or use a model with external data`);
}

export function serializeModel(proto: ModelProto, file = 'model'): Uint8Array {
  const bytes = toBinary(ModelProtoSchema, proto);
  if (bytes.byteLength > PROTOBUF_LIMIT) throw tooBig(file);
  return bytes;
}

/** A deep copy, so passes can rewrite a model without touching the caller's. */
export function cloneModel(proto: ModelProto): ModelProto {
  return fromBinary(ModelProtoSchema, toBinary(ModelProtoSchema, proto));
}

export function setMetadata(proto: ModelProto, entries: Record<string, string>): void {
  for (const [key, value] of Object.entries(entries)) {
    const existing = proto.metadataProps.find((e) => e.key === key);
    if (existing) existing.value = value;
    else proto.metadataProps.push(create(StringStringEntryProtoSchema, { key, value }));
  }
}

export function getMetadata(proto: ModelProto, key: string): string | undefined {
  return proto.metadataProps.find((e) => e.key === key)?.value;
}

export function opsetVersion(proto: ModelProto, domain = ''): number {
  const entry = proto.opsetImport.find((o) => o.domain === domain || (domain === '' && o.domain === 'ai.onnx'));
  return entry ? Number(entry.version) : 0;
}
