/**
 * Small reads and writes of a parsed model's own fields (copy, metadata, opset), beneath everything that
 * loads, saves or edits models, so the graph editor and the file I/O can both use them.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, StringStringEntryProtoSchema, type ModelProto } from './proto/onnx_pb.js';

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
