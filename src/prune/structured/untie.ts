import type { GraphProto, ModelProto } from '../../onnx/proto/onnx_pb.js';
import { ModelEditor } from '../../onnx/edit.js';
import { FLOAT_TYPES } from '../../onnx/tensor.js';
import { aliasedConstant } from '../../onnx/aliases.js';

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
  const ed = new ModelEditor({ ...model, graph: g });
  // the float constant a tensor name stands for, through Identity aliases
  const source = (name: string): string | undefined => {
    const c = aliasedConstant(ed, name);
    return c && FLOAT_TYPES.has(ed.constant(c)!.dataType) ? c : undefined;
  };
  const reads = new Map<string, number>();
  for (const node of g.node) {
    if (node.opType === 'Identity' && source(node.input[0])) continue;
    node.input.forEach((name, i) => {
      if (!name) return;
      const src = source(name);
      if (!src) return;
      const k = reads.get(src) ?? 0;
      reads.set(src, k + 1);
      ed.setInput(node, i, k === 0 ? src : ed.copyConstant(src, `${src}_untied${k}`));
    });
  }
  ed.dropUnread(new Set(['Identity']), { initializers: false });
  return ed.model;
}
