import { clone, create } from '@bufbuild/protobuf';
import { makeNode, type NodeSpec } from './build.js';
import { attr } from './graph.js';
import { cloneModel, opsetVersion } from './model.js';
import { NameGenerator } from './names.js';
import { GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, TensorProtoSchema, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto/onnx_pb.js';
import { adoptTensorFloat32, DataType, makeFloatTensor, makeIntTensor, setTensorFloat32, tensorDims, type IntType } from './tensor.js';

/** A node to add: its spec, and the base of its name (made unique; the op type when not given). */
export type NewNode = NodeSpec & { name?: string };

/**
 * Editing a model in place: every rewrite (structured surgery, temperature baking, a bias added by
 * reconstruction, the distillation graph) is a short pass over one of these, so names stay unique and
 * the producer and initializer lookups stay right after each edit. Write the graph only through the
 * editor while one is open on it; reading the proto directly is fine.
 */
export class ModelEditor {
  readonly graph: GraphProto;
  readonly names: NameGenerator;
  private readonly producers = new Map<string, NodeProto>();
  private readonly inits = new Map<string, TensorProto>();
  /** built on demand and dropped by any edit that moves a reader */
  private readers?: Map<string, NodeProto[]>;

  constructor(readonly model: ModelProto) {
    if (!model.graph) throw new Error('model has no graph');
    this.graph = model.graph;
    this.names = NameGenerator.forGraph(this.graph);
    for (const t of this.graph.initializer) this.inits.set(t.name, t);
    for (const n of this.graph.node) this.indexOutputs(n);
  }

  /** An editor over a deep copy, so the caller's model is never touched. */
  static copyOf(model: ModelProto): ModelEditor {
    return new ModelEditor(cloneModel(model));
  }

  /** An editor over a new model with an empty graph importing the default domain at `opset`. */
  static empty(opset: number, name: string): ModelEditor {
    return new ModelEditor(
      create(ModelProtoSchema, {
        irVersion: 8n,
        producerName: 'prune-guard',
        opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })],
        graph: create(GraphProtoSchema, { name }),
      }),
    );
  }

  /** The opset the model imports for `domain` (0 when it imports none), to pick an op form valid there. */
  opset(domain = ''): number {
    return opsetVersion(this.model, domain);
  }

  /** A name nothing in the graph uses, reserved: `base`, else `base_1`, `base_2`, … */
  fresh(base: string): string {
    return this.names.fresh(base);
  }

  // ---- lookups

  producer(tensor: string): NodeProto | undefined {
    return this.producers.get(tensor);
  }

  /** The nodes that read `tensor`, each once, in graph order. */
  consumers(tensor: string): NodeProto[] {
    if (!this.readers) {
      this.readers = new Map();
      for (const n of this.graph.node) {
        for (const i of new Set(n.input)) {
          if (!i) continue;
          const list = this.readers.get(i);
          if (list) list.push(n);
          else this.readers.set(i, [n]);
        }
      }
    }
    return this.readers.get(tensor) ?? [];
  }

  initializer(name: string): TensorProto | undefined {
    return this.inits.get(name);
  }

  /** The constant behind a tensor name: an initializer or the value of a Constant node. */
  constant(name: string): TensorProto | undefined {
    const init = this.inits.get(name);
    if (init) return init;
    const p = this.producers.get(name);
    return p && p.opType === 'Constant' ? attr(p, 'value')?.t : undefined;
  }

  isGraphOutput(tensor: string): boolean {
    return this.graph.output.some((o) => o.name === tensor);
  }

  // ---- initializers

  /** A new float initializer stored as `dataType` (float32, float16, bfloat16, double); returns its name. */
  addFloatInitializer(base: string, dims: readonly number[], values: Float32Array, dataType: DataType = DataType.FLOAT): string {
    return this.pushInitializer(makeFloatTensor(this.fresh(base), dims, values, dataType));
  }

  /** A new integer initializer: int64 (or int32) shapes, axes, indices; int8/uint8/int32 quantized values. Returns its name. */
  addIntInitializer(base: string, dims: readonly number[], values: ArrayLike<number>, dataType: IntType = DataType.INT64): string {
    return this.pushInitializer(makeIntTensor(this.fresh(base), dims, values, dataType));
  }

  /**
   * Store an initializer's values in an integer type under its own name and shape: a weight quantized
   * in place, so everything that names it (reports, sparsity counts) still finds it.
   */
  storeAsInteger(name: string, values: ArrayLike<number>, dataType: IntType): TensorProto {
    const old = this.inits.get(name);
    if (!old) throw new Error(`no initializer '${name}'`);
    const t = makeIntTensor(name, tensorDims(old), values, dataType);
    this.graph.initializer[this.graph.initializer.indexOf(old)] = t;
    this.inits.set(name, t);
    return t;
  }

  /** A new initializer with the type, shape and values of the constant `name` (initializer or Constant); returns its name. */
  copyConstant(name: string, base: string): string {
    const src = this.constant(name);
    if (!src) throw new Error(`'${name}' is not a constant`);
    const t = clone(TensorProtoSchema, src);
    t.name = this.fresh(base);
    return this.pushInitializer(t);
  }

  /**
   * New values for a float constant (an initializer or a Constant node's value), written in the
   * tensor's own element type: a float16 weight stays float16. `dims` reshapes it (channels removed).
   */
  replaceInitializer(name: string, values: Float32Array, dims?: readonly number[]): TensorProto {
    const t = this.requireConstant(name);
    setTensorFloat32(t, values, dims);
    return t;
  }

  /**
   * Like replaceInitializer with the shape unchanged, but a float32 tensor takes `values`' buffer without
   * a copy: for a freshly computed weight the caller hands over and never touches again.
   */
  adoptInitializer(name: string, values: Float32Array): TensorProto {
    const t = this.requireConstant(name);
    adoptTensorFloat32(t, values);
    return t;
  }

  /** Remove initializers, and their entries among the graph inputs where an older exporter listed them. */
  removeInitializers(names: Iterable<string>): void {
    const gone = new Set(names);
    for (const name of gone) if (!this.inits.delete(name)) throw new Error(`no initializer '${name}'`);
    this.graph.initializer = this.graph.initializer.filter((t) => !gone.has(t.name));
    this.graph.input = this.graph.input.filter((i) => !gone.has(i.name));
  }

  // ---- nodes

  /** Append a node (or place it right after `after`, keeping the graph's order topological). */
  addNode(spec: NewNode, place: { after?: NodeProto } = {}): NodeProto {
    const node = makeNode(this.fresh(spec.name ?? spec.opType), spec);
    for (const o of node.output) this.names.reserve(o);
    if (place.after) this.graph.node.splice(this.position(place.after) + 1, 0, node);
    else this.graph.node.push(node);
    this.indexOutputs(node);
    this.readers = undefined;
    return node;
  }

  /**
   * Put a node between `tensor` and everything that reads it: the producer now writes a fresh name
   * (from `renamedBase`), the new node reads that where its inputs name `tensor`, and writes `tensor`
   * itself. So every consumer and a graph output of that name get the new node's result with no name
   * changing, and the node sits right after the producer. value_info declared for `tensor` moves with
   * the producer's output; a graph output's declaration stays, so a node that changes the element type
   * or shape must be declared again (declareOutput). Returns the new node.
   */
  insertAfter(tensor: string, spec: Omit<NewNode, 'outputs'>, renamedBase = `${tensor}_before_${spec.opType}`): NodeProto {
    const producer = this.producers.get(tensor);
    if (!producer) throw new Error(`'${tensor}' is not produced by a node`);
    const renamed = this.fresh(renamedBase);
    producer.output[producer.output.indexOf(tensor)] = renamed;
    this.producers.set(renamed, producer);
    this.producers.delete(tensor);
    for (const v of this.graph.valueInfo) if (v.name === tensor) v.name = renamed;
    return this.addNode({ ...spec, inputs: spec.inputs.map((i) => (i === tensor ? renamed : i)), outputs: [tensor] }, { after: producer });
  }

  /** Put a new node where `old` was (same place; its name unless the spec names one); returns it. */
  replaceNode(old: NodeProto, spec: NewNode): NodeProto {
    const at = this.position(old);
    this.unindexOutputs(old);
    const node = makeNode(spec.name !== undefined ? this.fresh(spec.name) : old.name, spec);
    for (const o of node.output) this.names.reserve(o);
    this.graph.node[at] = node;
    this.indexOutputs(node);
    this.readers = undefined;
    return node;
  }

  removeNode(node: NodeProto): void {
    this.graph.node.splice(this.position(node), 1);
    this.unindexOutputs(node);
    this.readers = undefined;
  }

  /** Keep only `nodes`, in the order given (a topological order of a subgraph). */
  setNodes(nodes: readonly NodeProto[]): void {
    this.graph.node = [...nodes];
    this.producers.clear();
    for (const n of nodes) this.indexOutputs(n);
    this.readers = undefined;
  }

  /** Make input `slot` of `node` read `tensor` (`''` for an omitted optional input), padding the list if needed. */
  setInput(node: NodeProto, slot: number, tensor: string): void {
    while (node.input.length <= slot) node.input.push('');
    node.input[slot] = tensor;
    this.names.reserve(tensor);
    this.readers = undefined;
  }

  /** Make output `slot` of `node` write `tensor` (MaxPool's optional indices, say). */
  setOutput(node: NodeProto, slot: number, tensor: string): void {
    while (node.output.length <= slot) node.output.push('');
    const old = node.output[slot];
    if (old && this.producers.get(old) === node) this.producers.delete(old);
    node.output[slot] = tensor;
    this.names.reserve(tensor);
    if (tensor) this.producers.set(tensor, node);
  }

  /**
   * Remove, until nothing changes, nodes of the given op types whose outputs nothing reads (graph
   * outputs count as read), and with `initializers` also initializers nothing reads (and their graph
   * input entries).
   */
  dropUnread(opTypes: ReadonlySet<string>, opts: { initializers: boolean }): void {
    const g = this.graph;
    const dropped = new Set<string>();
    for (;;) {
      const read = new Set<string>([...g.node.flatMap((n) => n.input), ...g.output.map((o) => o.name)]);
      const before = g.node.length + g.initializer.length;
      const [kept, gone] = partition(g.node, (n) => !opTypes.has(n.opType) || n.output.some((o) => read.has(o)));
      g.node = kept;
      for (const n of gone) this.unindexOutputs(n);
      if (opts.initializers) {
        for (const t of g.initializer) if (!read.has(t.name)) dropped.add(t.name);
        g.initializer = g.initializer.filter((t) => read.has(t.name));
      }
      if (g.node.length + g.initializer.length === before) break;
    }
    for (const name of dropped) this.inits.delete(name);
    g.input = g.input.filter((i) => !dropped.has(i.name));
    this.readers = undefined;
  }

  // ---- declarations

  /** Graph inputs that are data, not initializers listed as inputs (older exporters list them). */
  dataInputs(): ValueInfoProto[] {
    return this.graph.input.filter((i) => !this.inits.has(i.name));
  }

  /** Drop the graph-input entries of initializers, leaving the data inputs. */
  dropInitializerInputs(): void {
    this.graph.input = this.dataInputs();
  }

  addInput(decl: ValueInfoProto): void {
    if (this.graph.input.some((i) => i.name === decl.name)) throw new Error(`'${decl.name}' is already a graph input`);
    this.names.reserve(decl.name);
    this.graph.input.push(decl);
  }

  /** Declare a graph output; a tensor that already is one keeps its declaration. */
  declareOutput(decl: ValueInfoProto): void {
    if (this.isGraphOutput(decl.name)) return;
    this.names.reserve(decl.name);
    this.graph.output.push(decl);
  }

  /** Replace the graph outputs, in this order. */
  setOutputs(decls: readonly ValueInfoProto[]): void {
    for (const d of decls) this.names.reserve(d.name);
    this.graph.output = [...decls];
  }

  /** Declare an intermediate tensor's type and shape, replacing an earlier declaration. */
  declareValueInfo(decl: ValueInfoProto): void {
    this.names.reserve(decl.name);
    this.graph.valueInfo = [...this.graph.valueInfo.filter((v) => v.name !== decl.name), decl];
  }

  /** Forget the declarations of these intermediate tensors (a rewrite removed them). */
  dropValueInfo(names: Iterable<string>): void {
    const gone = new Set(names);
    this.graph.valueInfo = this.graph.valueInfo.filter((v) => !gone.has(v.name));
  }

  /** Forget every intermediate declaration: after surgery their shapes are stale (runtimes infer them again). */
  clearValueInfo(): void {
    this.graph.valueInfo = [];
  }

  /** Older exporters list initializers as graph inputs: make those declared shapes match the tensors. */
  redeclareInitializerInputs(): void {
    for (const i of this.graph.input) {
      const t = this.inits.get(i.name);
      const shape = i.type?.value.case === 'tensorType' ? i.type.value.value.shape : undefined;
      if (t && shape) tensorDims(t).forEach((d, k) => { if (shape.dim[k]) shape.dim[k].value = { case: 'dimValue', value: BigInt(d) }; });
    }
  }

  // ---- internals

  private pushInitializer(t: TensorProto): string {
    this.graph.initializer.push(t);
    this.inits.set(t.name, t);
    return t.name;
  }

  private requireConstant(name: string): TensorProto {
    const t = this.constant(name);
    if (!t) throw new Error(`'${name}' is not a constant`);
    return t;
  }

  private position(node: NodeProto): number {
    const at = this.graph.node.indexOf(node);
    if (at < 0) throw new Error(`node '${node.name || node.opType}' is not in the graph`);
    return at;
  }

  private indexOutputs(node: NodeProto): void {
    for (const o of node.output) if (o) this.producers.set(o, node);
  }

  private unindexOutputs(node: NodeProto): void {
    for (const o of node.output) if (o && this.producers.get(o) === node) this.producers.delete(o);
  }
}

function partition<T>(items: readonly T[], keep: (x: T) => boolean): [T[], T[]] {
  const yes: T[] = [];
  const no: T[] = [];
  for (const x of items) (keep(x) ? yes : no).push(x);
  return [yes, no];
}
