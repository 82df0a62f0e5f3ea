import { create } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType as AT,
  AttributeProtoSchema,
  NodeProtoSchema,
  TensorProtoSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto/onnx_pb.js';
import { DataType, FLOAT_TYPES, dataTypeName, setTensorFloat32 } from './tensor.js';

/**
 * Constructors for the protobuf pieces a rewrite writes: nodes, attributes, tensors and declarations.
 * onnx.proto is proto2, so a field set to its default is still written: these set only what is given,
 * and an unchanged rewrite therefore writes the same bytes.
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

/**
 * A float tensor (float32, float16, bfloat16 or double) holding `values` rounded to `dataType`, so a
 * constant added beside a float16 model's weights is float16 too.
 */
export function floatTensor(name: string, dims: readonly number[], values: Float32Array, dataType: DataType = DataType.FLOAT): TensorProto {
  if (!FLOAT_TYPES.has(dataType)) throw new Error(`tensor ${name}: ${dataTypeName(dataType)} is not a float type`);
  const t = create(TensorProtoSchema, { name, dataType, dims: dims.map(BigInt) });
  setTensorFloat32(t, values);
  return t;
}

/** An int64 (or int32) tensor, as shape, axes and index constants are stored. */
export function intTensor(name: string, dims: readonly number[], values: readonly number[], dataType: DataType.INT64 | DataType.INT32 = DataType.INT64): TensorProto {
  const raw = dataType === DataType.INT32 ? new Uint8Array(Int32Array.from(values).buffer) : new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer);
  return create(TensorProtoSchema, { name, dataType, dims: dims.map(BigInt), rawData: raw });
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
