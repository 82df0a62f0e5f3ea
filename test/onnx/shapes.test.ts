import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { GraphIndex } from '../../src/onnx/graph.js';
import { saveModel } from '../../src/onnx/model.js';
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
  type NodeProto,
  type ValueInfoProto,
} from '../../src/onnx/proto/onnx_pb.js';
import { inferShapes } from '../../src/onnx/shapes.js';
import { makeFloatTensor, makeInt64Tensor } from '../../src/onnx/tensor.js';
import { analyzeDependencies } from '../../src/prune/structured/depgraph.js';
import { exactnessPerGroup } from '../prune/structured/exactness.js';
import { seededWeights } from '../support/buildModel.js';
import { tempDir } from '../support/fixtures.js';

const D = 4; // embedding width
const T = 3; // patch tokens
const H = 8; // MLP hidden units

function info(name: string, dims: (number | string)[]): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: { elemType: 1, shape: { dim: dims.map((d) => ({ value: typeof d === 'number' ? { case: 'dimValue' as const, value: BigInt(d) } : { case: 'dimParam' as const, value: d } })) } } as never,
      },
    }),
  });
}

function node(opType: string, input: string[], output: string, ints: Record<string, number | number[]> = {}, tensor?: ReturnType<typeof makeInt64Tensor>): NodeProto {
  const attribute = Object.entries(ints).map(([name, v]) =>
    Array.isArray(v)
      ? create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INTS, ints: v.map(BigInt) })
      : create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(v) }),
  );
  if (tensor) attribute.push(create(AttributeProtoSchema, { name: 'value', type: AttributeProto_AttributeType.TENSOR, t: tensor }));
  return create(NodeProtoSchema, { name: output, opType, input, output: [output], attribute });
}

/**
 * The ViT class-token pattern as torch.onnx writes `class_token.expand(n, -1, -1)` (torchvision's
 * vit_b_16): the batch from Shape/Gather, Concat with -1s, then Where(Equal(shape, -1), ones, shape)
 * as the Expand target; the expanded token is concatenated before the patch tokens, a position
 * embedding added, and an MLP (MatMul -> Relu -> MatMul) with a residual follows.
 */
function classTokenModel(): ModelProto {
  const ints = (name: string, values: number[], dims = [values.length]) => makeInt64Tensor(name, dims, values);
  const nodes = [
    node('Shape', ['x'], 'shape'),
    node('Gather', ['shape', 'zero'], 'n', { axis: 0 }),
    node('Unsqueeze', ['n', 'axes0'], 'n1'),
    node('Concat', ['n1', 'minus1', 'minus1'], 'target', { axis: 0 }),
    node('Reshape', ['target', 'minus1'], 'target_flat'),
    node('Shape', ['target_flat'], 'target_len'),
    node('ConstantOfShape', ['target_len'], 'ones', {}, ints('one', [1], [1])),
    node('Mul', ['ones', 'minus1_scalar'], 'minus_ones'),
    node('Equal', ['target_flat', 'minus_ones'], 'is_minus1'),
    node('Where', ['is_minus1', 'ones', 'target_flat'], 'expand_to'),
    node('Expand', ['class_token', 'expand_to'], 'tokens0'),
    node('Concat', ['tokens0', 'x'], 'tokens', { axis: 1 }),
    node('Add', ['tokens', 'pos'], 'embedded'),
    node('MatMul', ['embedded', 'W1'], 'h'),
    node('Relu', ['h'], 'h_act'),
    node('MatMul', ['h_act', 'W2'], 'mlp'),
    node('Add', ['embedded', 'mlp'], 'y'),
  ];
  const initializer = [
    makeFloatTensor('class_token', [1, 1, D], seededWeights(D, 1)),
    makeFloatTensor('pos', [1, T + 1, D], seededWeights((T + 1) * D, 2)),
    makeFloatTensor('W1', [D, H], seededWeights(D * H, 3)),
    makeFloatTensor('W2', [H, D], seededWeights(H * D, 4)),
    ints('zero', [0], []),
    ints('axes0', [0]),
    ints('minus1', [-1]),
    ints('minus1_scalar', [-1], []),
  ];
  return create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: 'prune-guard-test',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 13n })],
    graph: create(GraphProtoSchema, { name: 'class-token', node: nodes, initializer, input: [info('x', ['N', T, D])], output: [info('y', ['N', T + 1, D])] }),
  });
}

describe('inferShapes through the ViT class-token Expand/Concat', () => {
  it('follows Where(Equal(shape, -1), ones, shape) to a concrete Expand shape and the Concat after it', () => {
    const { shapes, values } = inferShapes(new GraphIndex(classTokenModel().graph!), 2);
    expect(values.get('expand_to')).toEqual([2, 1, 1]);
    expect(shapes.get('tokens0')).toEqual([2, 1, D]);
    expect(shapes.get('tokens')).toEqual([2, T + 1, D]);
    expect(shapes.get('h')).toEqual([2, T + 1, H]);
  });

  it('makes the MLP hidden units after the class token a prunable group, pruned exactly', async () => {
    const model = classTokenModel();
    const groups = analyzeDependencies(model).groups;
    expect(groups.filter((g) => !g.skip).map((g) => g.name)).toEqual(['h']);
    const file = path.join(tempDir(), 'class-token.onnx');
    saveModel(model, file);
    const checks = await exactnessPerGroup(file, { check: true });
    expect(checks).toHaveLength(1);
    expect(checks[0].diff).toBeLessThan(1e-5);
    expect(checks[0].smaller).toBe(true);
  });
});
