import { create, toBinary } from '@bufbuild/protobuf';
import { randomBytes } from 'node:crypto';
import { GraphProtoSchema, ModelProtoSchema, TensorProtoSchema, type GraphProto, type ModelProto, type TensorProto } from './proto/onnx_pb.js';

/**
 * A tensor whose raw_data is at least this big is written straight from its own bytes; smaller ones are
 * encoded with toBinary one at a time. Either way no buffer ever holds the whole model: toBinary of a
 * ModelProto needs a second copy of every weight (VGG-16: +528 MB on top of the model itself).
 */
const STREAM_RAW_BYTES = 1 << 16;

// field tags (field number << 3 | wire type 2, length-delimited)
const TAG_MODEL_GRAPH = (7 << 3) | 2;
const TAG_GRAPH_INITIALIZER = (5 << 3) | 2;
const TAG_TENSOR_RAW_DATA = (9 << 3) | 2;

export function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

/** tag + length of one length-delimited field holding `length` bytes */
function framing(tag: number, length: number): Uint8Array {
  const len = varint(length);
  const out = new Uint8Array(1 + len.length);
  out[0] = tag;
  out.set(len, 1);
  return out;
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).indexOf(Buffer.from(needle.buffer, needle.byteOffset, needle.byteLength));
}

/**
 * Split `bytes` (a message encoding that holds exactly one field `tag` whose content is `inner`) into what
 * comes before that field's tag and what comes after its content. The sentinel content is random, so it
 * occurs once; a second occurrence would mean our assumption is wrong, and we refuse rather than guess.
 */
function splitAround(bytes: Uint8Array, tag: number, inner: Uint8Array): [Uint8Array, Uint8Array] {
  const field = new Uint8Array([...framing(tag, inner.length), ...inner]);
  const at = indexOf(bytes, field);
  if (at < 0 || indexOf(bytes.subarray(at + 1), field) >= 0) throw new Error('streamSave: sentinel field not found exactly once');
  return [bytes.subarray(0, at), bytes.subarray(at + field.length)];
}

/** `encode()` with `holder[key]` swapped for `value`, always put back: the caller's proto is never left changed. */
function encodeWith<T extends object, K extends keyof T>(holder: T, key: K, value: T[K], encode: () => Uint8Array): Uint8Array {
  const kept = holder[key];
  holder[key] = value;
  try {
    return encode();
  } finally {
    holder[key] = kept;
  }
}

/** The encoding of one TensorProto as pieces: the big raw_data is the tensor's own bytes, not a copy. */
function tensorPieces(t: TensorProto, streamRawBytes: number): Uint8Array[] {
  const raw = t.rawData;
  // an empty raw_data may or may not be encoded (proto2 presence): leave that to toBinary
  if (raw.byteLength === 0 || raw.byteLength < streamRawBytes) return [toBinary(TensorProtoSchema, t)];
  const sentinel = randomBytes(16);
  const encoded = encodeWith(t, 'rawData', sentinel, () => toBinary(TensorProtoSchema, t));
  const [before, after] = splitAround(encoded, TAG_TENSOR_RAW_DATA, sentinel);
  return [before, framing(TAG_TENSOR_RAW_DATA, raw.byteLength), raw, after];
}

function sentinelTensor(): { tensor: TensorProto; bytes: Uint8Array } {
  const tensor = create(TensorProtoSchema, { name: randomBytes(16).toString('hex') });
  return { tensor, bytes: toBinary(TensorProtoSchema, tensor) };
}

export interface ModelChunks {
  /** total byte length of the serialisation, known before anything is written */
  bytes: number;
  /** the serialisation in order; big tensors' raw data are yielded as the tensors' own arrays */
  chunks(): Generator<Uint8Array>;
}

/**
 * Serialise a ModelProto as a sequence of chunks whose concatenation is byte-identical to
 * toBinary(ModelProtoSchema, proto): the model and graph without their initializers are encoded with
 * toBinary (with a sentinel in the initializers' place, so protobuf-es decides field order and unknown
 * fields), and the graph.initializer / tensor.raw_data framing around the weights is written by hand.
 * The proto is changed only for the duration of each toBinary call and restored before returning.
 */
export function modelChunks(proto: ModelProto, streamRawBytes = STREAM_RAW_BYTES): ModelChunks {
  const graph = proto.graph;
  if (!graph) {
    const whole = toBinary(ModelProtoSchema, proto);
    return { bytes: whole.byteLength, chunks: function* () { yield whole; } };
  }
  const [graphBefore, graphAfter] = graphFraming(graph);
  // each initializer's encoded length, without encoding the big raw data
  const sizes = graph.initializer.map((t) => {
    const pieces = tensorPieces(t, streamRawBytes);
    return pieces.reduce((s, p) => s + p.byteLength, 0);
  });
  let graphLength = graphBefore.byteLength + graphAfter.byteLength;
  for (const s of sizes) graphLength += framing(TAG_GRAPH_INITIALIZER, s).byteLength + s;

  const sentinelGraph = create(GraphProtoSchema, { name: randomBytes(16).toString('hex') });
  const modelEncoded = encodeWith(proto, 'graph', sentinelGraph, () => toBinary(ModelProtoSchema, proto));
  const [modelBefore, modelAfter] = splitAround(modelEncoded, TAG_MODEL_GRAPH, toBinary(GraphProtoSchema, sentinelGraph));
  const graphHeader = framing(TAG_MODEL_GRAPH, graphLength);
  const bytes = modelBefore.byteLength + graphHeader.byteLength + graphLength + modelAfter.byteLength;
  const initializers = graph.initializer;
  return {
    bytes,
    chunks: function* () {
      yield modelBefore;
      yield graphHeader;
      yield graphBefore;
      for (let i = 0; i < initializers.length; i++) {
        yield framing(TAG_GRAPH_INITIALIZER, sizes[i]!);
        // re-encoded here rather than kept from the size pass, so small tensors' encodings are not all alive at once
        const pieces = tensorPieces(initializers[i]!, streamRawBytes);
        const got = pieces.reduce((s, p) => s + p.byteLength, 0);
        if (got !== sizes[i]) throw new Error(`streamSave: initializer '${initializers[i]!.name}' changed while the model was being written`);
        yield* pieces;
      }
      yield graphAfter;
      yield modelAfter;
    },
  };
}

/** The graph's encoding before and after its (consecutive) initializer fields. */
function graphFraming(graph: GraphProto): [Uint8Array, Uint8Array] {
  const sentinel = sentinelTensor();
  const encoded = encodeWith(graph, 'initializer', [sentinel.tensor], () => toBinary(GraphProtoSchema, graph));
  return splitAround(encoded, TAG_GRAPH_INITIALIZER, sentinel.bytes);
}
