import { create } from '@bufbuild/protobuf';
import { valueInfo } from './build.js';
import { ModelEditor } from './edit.js';
import type { ModelProto, NodeProto } from './proto/onnx_pb.js';
import { GraphProtoSchema, ModelProtoSchema } from './proto/onnx_pb.js';

/**
 * A copy of `model` that also outputs the named intermediate float tensors, so one run yields the
 * activations a layer sees. onnxruntime keeps a fetched tensor alive, which also stops it from fusing
 * it away.
 */
export function withExtraOutputs(model: ModelProto, tensors: readonly string[]): ModelProto {
  const ed = ModelEditor.copyOf(model);
  for (const name of tensors) ed.declareOutput(valueInfo(name));
  return ed.model;
}

/**
 * A model that computes only the named float tensors: the nodes they depend on, the initializers those
 * nodes read, every graph input (so the same feeds work), and the tensors as its outputs. Capturing a
 * layer's input this way skips everything after it: on VGG-16 the capture of an early conv's input
 * runs a few convolutions, not the network, and its session does not hold the 400 MB classifier.
 * Initializers are shared with `model`, not copied; the result is meant to be serialised at once.
 * Nodes with subgraphs (If, Loop, Scan) can read outer tensors the walk would miss: then the whole
 * model with the extra outputs is returned instead.
 */
export function graphUpTo(model: ModelProto, tensors: readonly string[]): ModelProto {
  const g = model.graph!;
  const up = upstream(model, tensors);
  if (!up) return withExtraOutputs(model, tensors);
  const { nodes: needed, names } = up;
  const initNames = new Set(g.initializer.map((t) => t.name));
  const graph = create(GraphProtoSchema, {
    name: g.name,
    node: g.node.filter((n) => needed.has(n)),
    initializer: g.initializer.filter((t) => names.has(t.name)),
    sparseInitializer: g.sparseInitializer.filter((t) => names.has(t.values?.name ?? '')),
    input: g.input.filter((i) => !initNames.has(i.name) || names.has(i.name)),
    output: tensors.map((name) => g.output.find((o) => o.name === name) ?? valueInfo(name)),
    valueInfo: g.valueInfo.filter((v) => names.has(v.name)),
  });
  return create(ModelProtoSchema, { irVersion: model.irVersion, opsetImport: model.opsetImport, producerName: model.producerName, producerVersion: model.producerVersion, domain: model.domain, modelVersion: model.modelVersion, graph, functions: model.functions });
}

/**
 * The nodes the named tensors depend on and every tensor name on the way, or null when a node with a
 * subgraph is among them (its outer-scope reads are not walked).
 */
export function upstream(model: ModelProto, tensors: readonly string[]): { nodes: Set<NodeProto>; names: Set<string> } | null {
  const producer = new Map<string, NodeProto>();
  for (const n of model.graph!.node) for (const o of n.output) producer.set(o, n);
  const nodes = new Set<NodeProto>();
  const names = new Set<string>();
  const stack = [...tensors];
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (names.has(t)) continue;
    names.add(t);
    const n = producer.get(t);
    if (!n || nodes.has(n)) continue;
    if (n.attribute.some((a) => a.g !== undefined || a.graphs.length > 0)) return null;
    nodes.add(n);
    for (const i of n.input) if (i) stack.push(i);
  }
  return { nodes, names };
}
