import { clone } from '@bufbuild/protobuf';
import type { GraphProto, ModelProto, TensorProto } from '../../onnx/proto/onnx_pb.js';
import { TensorProtoSchema } from '../../onnx/proto/onnx_pb.js';
import { GraphIndex } from '../../onnx/graph.js';
import { FLOAT_TYPES } from '../../onnx/tensor.js';

/**
 * Give every reader of a float constant its own copy, bypassing Identity aliases. Exporters deduplicate
 * equal initializers (freshly initialised BatchNorm scales, zero biases) and alias them with Identity
 * nodes, which would couple unrelated layers' channels; an inference graph computes the same with
 * separate copies, and each copy can then be sliced with its own layer.
 */
export function untieConstants(model: ModelProto): ModelProto {
  // shallow: nodes get fresh input lists, tensors are shared with the input model and never written here
  // (a deep clone of a 100 MB model costs seconds; surgery clones before it writes)
  const src0 = model.graph!;
  const g: GraphProto = { ...src0, node: src0.node.map((n) => ({ ...n, input: [...n.input] })), initializer: [...src0.initializer] };
  const out: ModelProto = { ...model, graph: g };
  const index = new GraphIndex(g);
  const source = (name: string): { name: string; tensor: TensorProto } | undefined => {
    let n = name;
    for (let hop = 0; hop < 8 && n; hop++) {
      const t = index.constant(n);
      if (t) return FLOAT_TYPES.has(t.dataType) ? { name: n, tensor: t } : undefined;
      const p = index.producer.get(n);
      if (!p || p.opType !== 'Identity') return undefined;
      n = p.input[0];
    }
    return undefined;
  };
  const taken = new Set<string>([...g.initializer.map((t) => t.name), ...g.node.flatMap((n) => n.output), ...g.input.map((i) => i.name)]);
  const reads = new Map<string, number>();
  for (const node of g.node) {
    if (node.opType === 'Identity' && source(node.input[0])) continue;
    node.input.forEach((name, i) => {
      if (!name) return;
      const src = source(name);
      if (!src) return;
      const k = reads.get(src.name) ?? 0;
      reads.set(src.name, k + 1);
      if (k === 0) {
        node.input[i] = src.name;
        return;
      }
      let copy = `${src.name}_untied${k}`;
      for (let j = 1; taken.has(copy); j++) copy = `${src.name}_untied${k}_${j}`;
      taken.add(copy);
      const t = clone(TensorProtoSchema, src.tensor);
      t.name = copy;
      g.initializer.push(t);
      node.input[i] = copy;
    });
  }
  const outputs = new Set(g.output.map((o) => o.name));
  for (let before = -1; before !== g.node.length; ) {
    before = g.node.length;
    const read = new Set(g.node.flatMap((n) => n.input));
    g.node = g.node.filter((n) => n.opType !== 'Identity' || read.has(n.output[0]) || outputs.has(n.output[0]));
  }
  return out;
}
