import { create } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type ModelProto,
  type ValueInfoProto,
} from '../../src/onnx/proto/onnx_pb.js';
import { makeFloatTensor } from '../../src/onnx/tensor.js';

function floatInput(name: string, dims: readonly (number | string)[]): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: {
          elemType: 1,
          shape: { dim: dims.map((d) => ({ value: typeof d === 'number' ? { case: 'dimValue' as const, value: BigInt(d) } : { case: 'dimParam' as const, value: d } })) },
        } as never,
      },
    }),
  });
}

export interface OneOpSpec {
  opType: 'Conv' | 'ConvTranspose' | 'Gemm' | 'MatMul';
  /** data input shape (may use 'N' for the batch) */
  x: (number | string)[];
  weight: { dims: number[]; values: Float32Array };
  /** output shape, declared so onnx.checker's full check accepts the graph */
  y: (number | string)[];
  /** MatMul only: the weight is the left operand (Y = W @ X) */
  weightFirst?: boolean;
  ints?: Record<string, number | number[]>;
}

/**
 * A valid one-node float model `x -> op(x, W) -> y` (opset 13), for exercising weight layouts the
 * fixtures lack (Gemm without transB, MatMul W[in,out], ConvTranspose).
 */
export function oneOpModel(spec: OneOpSpec): ModelProto {
  const w = makeFloatTensor('W', spec.weight.dims, spec.weight.values);
  const inputs = spec.weightFirst ? ['W', 'x'] : ['x', 'W'];
  const attribute = Object.entries(spec.ints ?? {}).map(([name, v]) =>
    Array.isArray(v)
      ? create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INTS, ints: v.map(BigInt) })
      : create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(v) }),
  );
  const node = create(NodeProtoSchema, { name: `${spec.opType}_0`, opType: spec.opType, input: inputs, output: ['y'], attribute });
  const output = floatInput('y', spec.y);
  return create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: 'prune-guard-test',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 13n })],
    graph: create(GraphProtoSchema, { name: 'one-op', node: [node], initializer: [w], input: [floatInput('x', spec.x)], output: [output] }),
  });
}

/** Deterministic pseudo-random weights in [-1, 1) (a tiny LCG; tests must not depend on Math.random). */
export function seededWeights(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}
