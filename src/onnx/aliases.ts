import { ModelEditor } from './edit.js';
import type { GraphIndex } from './graph.js';
import type { GraphProto, ModelProto, NodeProto } from './proto/onnx_pb.js';

/** The name a tensor stands for through Identity aliases, when that is a constant by `isConstant`. */
function aliasSource(name: string, isConstant: (n: string) => boolean, producer: (n: string) => NodeProto | undefined): string | undefined {
  let n = name;
  for (let hop = 0; hop < 8 && n; hop++) {
    if (isConstant(n)) return n;
    const p = producer(n);
    if (!p || p.opType !== 'Identity') return undefined;
    n = p.input[0];
  }
  return undefined;
}

/** The constant (an initializer or a Constant's output) a tensor stands for through Identity aliases, if any. */
export function aliasedConstant(ed: ModelEditor, name: string): string | undefined {
  return aliasSource(name, (n) => !!ed.constant(n), (n) => ed.producer(n));
}

/** The initializer a tensor stands for through Identity aliases, if any. */
export function aliasedInitializer(index: GraphIndex, name: string): string | undefined {
  return aliasSource(name, (n) => index.initializers.has(n), (n) => index.producer.get(n));
}

/**
 * Every reader of an Identity alias of a constant reads the constant itself, and the Identity nodes
 * nothing reads any more go. Exporters deduplicate equal initializers (zero biases, fresh BatchNorm
 * scales) and alias them this way; a rewrite that looks for a weight or bias initializer on a node's
 * input would otherwise pass such a node by. Readers keep sharing the constant (no copies); the input
 * model is not changed.
 */
export function resolveConstantAliases(model: ModelProto): ModelProto {
  const src = model.graph!;
  const g: GraphProto = { ...src, node: src.node.map((n) => ({ ...n, input: [...n.input] })) };
  const ed = new ModelEditor({ ...model, graph: g });
  for (const node of g.node) {
    if (node.opType === 'Identity') continue;
    node.input.forEach((name, i) => {
      if (!name || ed.constant(name)) return;
      const c = aliasedConstant(ed, name);
      if (c) ed.setInput(node, i, c);
    });
  }
  ed.dropUnread(new Set(['Identity']), { initializers: false });
  return ed.model;
}
