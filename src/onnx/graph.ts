import type { AttributeProto, GraphProto, NodeProto, TensorProto, ValueInfoProto } from './proto/onnx_pb.js';
import { AttributeProto_AttributeType as AT } from './proto/onnx_pb.js';

/**
 * A read view over a GraphProto: who produces and who consumes each tensor, initializers by name and a
 * topological order. It indexes the proto in place; after a pass rewrites the proto, build a new one.
 */
export class GraphIndex {
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly initializers = new Map<string, TensorProto>();
  readonly valueInfo = new Map<string, ValueInfoProto>();
  readonly graphOutputs: ReadonlySet<string>;
  /** graph inputs that are real inputs, not initializers listed as inputs (older exporters do that) */
  readonly inputs: ValueInfoProto[];
  readonly order: NodeProto[];

  constructor(readonly graph: GraphProto) {
    for (const t of graph.initializer) this.initializers.set(t.name, t);
    for (const v of [...graph.input, ...graph.valueInfo, ...graph.output]) this.valueInfo.set(v.name, v);
    for (const n of graph.node) {
      for (const o of n.output) if (o) this.producer.set(o, n);
      for (const i of n.input) {
        if (!i) continue;
        const list = this.consumers.get(i);
        if (list) list.push(n);
        else this.consumers.set(i, [n]);
      }
    }
    this.graphOutputs = new Set(graph.output.map((o) => o.name));
    this.inputs = graph.input.filter((i) => !this.initializers.has(i.name));
    this.order = topologicalOrder(graph.node, this.producer);
  }

  consumersOf(tensor: string): NodeProto[] {
    return this.consumers.get(tensor) ?? [];
  }

  /** The constant behind a tensor name: an initializer or the value of a Constant node. */
  constant(tensor: string): TensorProto | undefined {
    const init = this.initializers.get(tensor);
    if (init) return init;
    const p = this.producer.get(tensor);
    if (p && p.opType === 'Constant') return attr(p, 'value')?.t;
    return undefined;
  }
}

/** Kahn's algorithm; nodes keep their file order among equals so output is stable. */
export function topologicalOrder(nodes: readonly NodeProto[], producer: ReadonlyMap<string, NodeProto>): NodeProto[] {
  const indegree = new Map<NodeProto, number>();
  const dependents = new Map<NodeProto, NodeProto[]>();
  for (const n of nodes) {
    let deg = 0;
    for (const i of new Set(n.input)) {
      const p = i ? producer.get(i) : undefined;
      if (p && p !== n) {
        deg++;
        const list = dependents.get(p);
        if (list) list.push(n);
        else dependents.set(p, [n]);
      }
    }
    indegree.set(n, deg);
  }
  const ready = nodes.filter((n) => indegree.get(n) === 0);
  const order: NodeProto[] = [];
  for (let k = 0; k < ready.length; k++) {
    const n = ready[k];
    order.push(n);
    for (const d of dependents.get(n) ?? []) {
      const left = indegree.get(d)! - 1;
      indegree.set(d, left);
      if (left === 0) ready.push(d);
    }
  }
  if (order.length !== nodes.length) throw new Error('graph has a cycle');
  return order;
}

/** `nodes` in a topological order: for a rewrite that appended nodes wherever was convenient. */
export function sortedNodes(nodes: readonly NodeProto[]): NodeProto[] {
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output) if (o) producer.set(o, n);
  return topologicalOrder(nodes, producer);
}

export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && a.type === AT.INT ? Number(a.i) : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a && a.type === AT.INTS ? a.ints.map(Number) : undefined;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && a.type === AT.FLOAT ? a.f : fallback;
}

export function attrString(node: NodeProto, name: string, fallback: string): string {
  const a = attr(node, name);
  return a && a.type === AT.STRING ? new TextDecoder().decode(a.s) : fallback;
}

/** A stable, human-readable label for a node: its name, or op type and first output. */
export function nodeLabel(node: NodeProto): string {
  return node.name || `${node.opType}(${node.output[0] ?? ''})`;
}
