import { create } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType as AT,
  AttributeProtoSchema,
  NodeProtoSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto/onnx_pb.js';
import { DataType } from './tensor.js';

/**
 * Constructors for the protobuf pieces a rewrite writes besides tensors (those are in tensor.ts): nodes,
 * attributes and declarations. onnx.proto is proto2, so a field set to its default is still written:
 * these set only what is given, so equal edits always serialise to equal bytes.
 */

/** An attribute value: INT, INTS, STRING, FLOAT, FLOATS or TENSOR by its shape. */
export type AttrValue = number | readonly number[] | string | { float: number } | { floats: readonly number[] } | { tensor: TensorProto };

export function attribute(name: string, v: AttrValue): AttributeProto {
  if (typeof v === 'number') return create(AttributeProtoSchema, { name, type: AT.INT, i: BigInt(v) });
  if (Array.isArray(v)) return create(AttributeProtoSchema, { name, type: AT.INTS, ints: v.map(BigInt) });
  if (typeof v === 'string') return create(AttributeProtoSchema, { name, type: AT.STRING, s: new TextEncoder().encode(v) });
  const o = v as Exclude<AttrValue, number | string | readonly number[]>;
  if ('float' in o) return create(AttributeProtoSchema, { name, type: AT.FLOAT, f: o.float });
  if ('floats' in o) return create(AttributeProtoSchema, { name, type: AT.FLOATS, floats: [...o.floats] });
  return create(AttributeProtoSchema, { name, type: AT.TENSOR, t: o.tensor });
}

export interface NodeSpec {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attrs?: Readonly<Record<string, AttrValue>>;
  /** left unset for the default ONNX domain */
  domain?: string;
}

export function makeNode(name: string, spec: NodeSpec): NodeProto {
  const attrs = Object.entries(spec.attrs ?? {}).map(([k, v]) => attribute(k, v));
  return create(NodeProtoSchema, {
    name,
    opType: spec.opType,
    input: [...spec.inputs],
    output: [...spec.outputs],
    ...(attrs.length > 0 ? { attribute: attrs } : {}),
    ...(spec.domain !== undefined ? { domain: spec.domain } : {}),
  });
}

/** A dimension: a size, a symbolic name (the batch), or null when unknown. */
export type Dim = number | string | null;

/**
 * A tensor declaration for graph inputs, outputs and value_info. Without `dims` the shape is left
 * unstated (runtimes infer it); `[]` states a scalar.
 */
export function valueInfo(name: string, elemType: DataType = DataType.FLOAT, dims?: readonly Dim[]): ValueInfoProto {
  const shape = dims && {
    dim: dims.map((d) =>
      d === null ? {} : typeof d === 'number' ? { value: { case: 'dimValue' as const, value: BigInt(d) } } : { value: { case: 'dimParam' as const, value: d } },
    ),
  };
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: 'tensorType', value: shape ? { elemType, shape } : { elemType } } }),
  });
}
