import type { GraphProto } from './proto/onnx_pb.js';

/**
 * Every name a graph uses: node names, tensor names read or written by nodes, graph inputs, outputs,
 * value_info and initializers, including those inside subgraphs (If/Loop/Scan bodies), whose names share
 * the scope of the outer graph.
 */
export function graphNames(graph: GraphProto, into = new Set<string>()): Set<string> {
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) into.add(v.name);
  for (const t of graph.initializer) into.add(t.name);
  for (const s of graph.sparseInitializer) {
    if (s.values) into.add(s.values.name);
    if (s.indices) into.add(s.indices.name);
  }
  for (const n of graph.node) {
    into.add(n.name);
    for (const i of n.input) into.add(i);
    for (const o of n.output) into.add(o);
    for (const a of n.attribute) {
      if (a.g) graphNames(a.g, into);
      for (const g of a.graphs) graphNames(g, into);
    }
  }
  into.delete('');
  return into;
}

/**
 * The one source of new names in a graph, for nodes, tensors and initializers alike: `fresh(base)` is
 * `base` while nothing uses it, else `base_1`, `base_2`, … (the first one free), and is never handed out
 * twice. A rewrite that adds nothing already named keeps the names it asked for, so its output stays
 * byte-identical from run to run.
 */
export class NameGenerator {
  private readonly taken: Set<string>;
  /** the next suffix to try per base, so adding thousands of nodes of one kind stays linear */
  private readonly next = new Map<string, number>();

  constructor(taken: Iterable<string> = []) {
    this.taken = new Set(taken);
  }

  static forGraph(graph: GraphProto): NameGenerator {
    return new NameGenerator(graphNames(graph));
  }

  has(name: string): boolean {
    return this.taken.has(name);
  }

  /** Mark a name as used (one the caller writes itself). */
  reserve(name: string): void {
    if (name) this.taken.add(name);
  }

  fresh(base: string): string {
    if (!base) throw new Error('a fresh name needs a non-empty base');
    let name = base;
    if (this.taken.has(name)) {
      let k = this.next.get(base) ?? 1;
      while (this.taken.has((name = `${base}_${k}`))) k++;
      this.next.set(base, k + 1);
    }
    this.taken.add(name);
    return name;
  }
}
