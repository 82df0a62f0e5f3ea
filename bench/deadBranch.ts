import { create } from '@bufbuild/protobuf';
import { cloneModel } from '../src/onnx/model.js';
import { AttributeProtoSchema, AttributeProto_AttributeType, NodeProtoSchema, type ModelProto } from '../src/onnx/proto/onnx_pb.js';
import { makeFloatTensor } from '../src/onnx/tensor.js';
import { seededRandom } from '../src/util/random.js';

/**
 * A copy of a one-input, one-output classifier that is really slower but gives bit-identical outputs:
 * the flattened input goes through `depth` MatMul+Relu layers of `width` units, is projected to the
 * output width, multiplied by zero and added to the original output. The branch depends on the input,
 * so onnxruntime cannot constant-fold it away, and x + 0·finite = x, so predictions do not change.
 */
export function addDeadBranch(model: ModelProto, inputFeatures: number, classes: number, width: number, depth: number): ModelProto {
  const m = cloneModel(model);
  const g = m.graph!;
  const input = g.input[0].name;
  const output = g.output[0].name;
  const renamed = `${output}__live`;
  for (const n of g.node) n.output = n.output.map((o) => (o === output ? renamed : o));
  const random = seededRandom(42);
  const weights = (name: string, rows: number, cols: number) => {
    const scale = 1 / Math.sqrt(rows);
    g.initializer.push(makeFloatTensor(name, [rows, cols], Float32Array.from({ length: rows * cols }, () => (random() - 0.5) * scale)));
    return name;
  };
  const node = (opType: string, inputs: string[], out: string, attrs: { name: string; i: number }[] = []) =>
    g.node.push(create(NodeProtoSchema, {
      opType,
      name: `dead/${out}`,
      input: inputs,
      output: [out],
      attribute: attrs.map((a) => create(AttributeProtoSchema, { name: a.name, i: BigInt(a.i), type: AttributeProto_AttributeType.INT })),
    }));
  node('Flatten', [input], 'dead/flat', [{ name: 'axis', i: 1 }]);
  let x = 'dead/flat';
  let rows = inputFeatures;
  for (let l = 0; l < depth; l++) {
    node('MatMul', [x, weights(`dead/w${l}`, rows, width)], `dead/mm${l}`);
    node('Relu', [`dead/mm${l}`], `dead/h${l}`);
    x = `dead/h${l}`;
    rows = width;
  }
  node('MatMul', [x, weights('dead/proj', rows, classes)], 'dead/proj_out');
  g.initializer.push(makeFloatTensor('dead/zero', [1], new Float32Array([0])));
  node('Mul', ['dead/proj_out', 'dead/zero'], 'dead/zeroed');
  node('Add', [renamed, 'dead/zeroed'], output);
  return m;
}
