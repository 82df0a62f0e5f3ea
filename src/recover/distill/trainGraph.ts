import { valueInfo } from '../../onnx/build.js';
import { ModelEditor } from '../../onnx/edit.js';
import { GraphIndex } from '../../onnx/graph.js';
import type { ModelProto, NodeProto } from '../../onnx/proto/onnx_pb.js';
import { inferShapes } from '../../onnx/shapes.js';
import { DataType, numel, tensorDims, tensorToFloat32, tensorToInts } from '../../onnx/tensor.js';
import { GraphBuilder } from './builder.js';
import { GRAD_RULES, NON_DIFFERENTIABLE, UnsupportedOp } from './gradients.js';

/** A float initializer distillation updates; `mask` (1 = may be nonzero) holds pruned zeros at zero. */
export interface Trainable {
  name: string;
  dims: number[];
  values: Float32Array;
  mask?: Uint8Array;
}

export interface TrainGraph {
  /** inputs: the model's data inputs, TEACHER_INPUT, LABEL_INPUT (when labelled) and every trainable; outputs: logits, then one gradient per trainable */
  model: ModelProto;
  params: Trainable[];
  /** graph output holding each param's gradient, parallel to params */
  gradOutputs: string[];
  logits: string;
  /** values of `logits` per sample: the classes (softmax), or the sigmoid decisions */
  width: number;
  /** shape of TEACHER_INPUT and LABEL_INPUT: [batch, classes] (softmax), the scores' own shape (sigmoid) */
  targetDims: number[];
  batch: number;
  /** the hint tensors the graph takes targets for */
  hints: string[];
}

export const TEACHER_INPUT = 'pg_teacher_probs';
export const LABEL_INPUT = 'pg_label_onehot';
export const hintInput = (t: string) => `pg_hint/${t}`;
export const hintScale = (t: string) => `pg_hint_scale/${t}`;

/**
 * softmax: the scores are logits over classes; sigmoid: each score is one independent decision's logit;
 * outputs: every output is pulled toward the dense model's values (relative MSE), for models without a
 * classifier head (detectors, embedding models)
 */
export type LossKind = 'softmax' | 'sigmoid' | 'outputs';

export interface TrainGraphOptions {
  batch: number;
  /** the tensor the loss is taken on (the input of the final Softmax or Sigmoid, or the logits output); the graph's first output when absent */
  scores?: string;
  /** default softmax */
  loss?: LossKind;
  /** `outputs` loss: the graph outputs matched to the dense model's, each fed as a hint target (hintInput, hintScale) */
  outputs?: readonly string[];
  /** distillation temperature T: the loss is T^2 KL(softmax(t/T) || softmax(s/T)) */
  temperature: number;
  /** weight of the cross-entropy with the labels (0 = no label input) */
  labelWeight: number;
  /**
   * intermediate tensors pulled toward the dense model's (feature distillation): each adds
   * scale * ||t - target||^2 / 2 to the loss, target and scale fed as inputs hintInput(t), hintScale(t)
   */
  hints?: readonly string[];
  /** initializers whose zeros are pruned weights, held at zero */
  masked: ReadonlySet<string>;
}

/** Input slots whose float initializer is a parameter worth training (never BatchNorm statistics or shape constants). */
const TRAINABLE_SLOTS: Readonly<Record<string, readonly number[]>> = {
  Conv: [1, 2],
  Gemm: [0, 1, 2],
  MatMul: [0, 1],
  BatchNormalization: [1, 2],
  LayerNormalization: [1, 2],
  Add: [0, 1],
  Sub: [0, 1],
  Mul: [0, 1],
};

/** The tensor a classifier's loss is taken on: the graph's first output, or the input of a final Softmax. */
export function logitsTensor(model: ModelProto): string {
  const g = model.graph!;
  const out = g.output[0].name;
  const p = g.node.find((n) => n.output.includes(out));
  return p && p.opType === 'Softmax' ? p.input[0] : out;
}

function isTrainableUse(index: GraphIndex, tensor: string, seen = new Set<string>(), initializer = index.initializers.get(tensor)!): boolean {
  if (seen.has(tensor)) return false;
  seen.add(tensor);
  for (const n of index.consumersOf(tensor)) {
    // exporters share equal initializers through Identity (one BatchNorm bias feeding two layers); the
    // size that decides an elementwise use is the initializer's, not the Identity output's
    if (n.opType === 'Identity' && isTrainableUse(index, n.output[0], seen, initializer)) return true;
    const slots = TRAINABLE_SLOTS[n.opType];
    if (!slots) continue;
    if (slots.some((s) => n.input[s] === tensor)) {
      if ((n.opType === 'Add' || n.opType === 'Sub' || n.opType === 'Mul') && numel(tensorDims(initializer)) < 2) continue;
      return true;
    }
  }
  return false;
}

/** Float32 initializers in parameter slots, with their current values and masks. */
export function selectTrainables(model: ModelProto, masked: ReadonlySet<string>): Trainable[] {
  const index = new GraphIndex(model.graph!);
  const out: Trainable[] = [];
  for (const [name, t] of index.initializers) {
    if (t.dataType !== DataType.FLOAT || !isTrainableUse(index, name)) continue;
    const values = tensorToFloat32(t);
    const trainable: Trainable = { name, dims: tensorDims(t), values };
    if (masked.has(name)) trainable.mask = Uint8Array.from(values, (v) => (v !== 0 ? 1 : 0));
    out.push(trainable);
  }
  return out;
}

const floatValueInfo = (name: string, dims?: readonly number[]) => valueInfo(name, DataType.FLOAT, dims);

/** Nodes the `targets` depend on, in topological order. */
function ancestors(index: GraphIndex, ...targets: string[]): NodeProto[] {
  const needed = new Set<NodeProto>();
  const stack = [...targets];
  while (stack.length > 0) {
    const p = index.producer.get(stack.pop()!);
    if (!p || needed.has(p)) continue;
    needed.add(p);
    for (const i of p.input) if (i) stack.push(i);
  }
  return index.order.filter((n) => needed.has(n));
}

/**
 * The training-step model: the forward graph with the trainable initializers turned into inputs, the
 * distillation loss's gradient at the logits, and the reverse-mode backward pass emitted as ONNX
 * nodes (like onnxruntime-training's gradient builder), so convolution and matrix gradients run in
 * onnxruntime's kernels. Shapes are fixed at `batch` samples. Throws UnsupportedOp for an op on the
 * path from a parameter to the logits that has no gradient rule.
 */
export function buildTrainGraph(model: ModelProto, params: readonly Trainable[], opts: TrainGraphOptions): TrainGraph {
  const ed = ModelEditor.copyOf(model);
  const index = new GraphIndex(ed.graph);
  const shapes = inferShapes(index, opts.batch).shapes;
  const loss = opts.loss ?? 'softmax';
  const matched = loss === 'outputs' ? [...(opts.outputs ?? [])] : [];
  const logits = loss === 'outputs' ? matched[0] : (opts.scores ?? logitsTensor(ed.model));
  const ls = shapes.get(logits);
  const width = ls && ls.length >= 1 ? numel(ls.slice(1)) : 0;
  for (const t of loss === 'outputs' ? matched : []) {
    const s = shapes.get(t);
    if (!s || s[0] !== opts.batch) throw new UnsupportedOp('output', t, `output of shape ${s ? `[${s.join(',')}]` : 'unknown'}, need the batch first`);
  }
  if (!ls || ls[0] !== opts.batch || (loss === 'softmax' && (ls.length < 2 || ls.slice(1).filter((d) => d !== 1).length > 1))) {
    throw new UnsupportedOp('output', logits, `scores of shape ${ls ? `[${ls.join(',')}]` : 'unknown'}, need [batch, classes]`);
  }
  const forward = ancestors(index, ...(loss === 'outputs' ? matched : [logits]));
  const trainable = new Set(params.map((p) => p.name));

  const requires = new Set<string>(trainable);
  for (const n of forward) {
    if (NON_DIFFERENTIABLE.has(n.opType)) continue;
    if (n.input.some((i) => requires.has(i))) for (const o of n.output) if (o) requires.add(o);
  }

  // the forward nodes, with the trainables as inputs; the builder appends the backward pass after them
  ed.setNodes(forward);
  ed.removeInitializers(params.map((p) => p.name).filter((name) => ed.initializer(name)));
  const b = new GraphBuilder(ed);
  const contributions = new Map<string, string[]>();
  const push = (t: string, grad: string) => {
    const list = contributions.get(t);
    if (list) list.push(grad);
    else contributions.set(t, [grad]);
  };
  const summed = new Map<string, string | undefined>();
  const gradOf = (t: string): string | undefined => {
    if (summed.has(t)) return summed.get(t);
    const list = contributions.get(t) ?? [];
    const s = list.length === 0 ? undefined : list.length === 1 ? list[0] : b.op('Sum', list);
    summed.set(t, s);
    return s;
  };

  // softmax: d/dz of T^2 KL(p_t || softmax(z/T)) + w CE(y, softmax(z)); sigmoid: the same for each
  // decision's two-way distribution (sigmoid(z/T) against the teacher's), averaged over the batch
  const T = opts.temperature;
  const teacherDims = loss === 'softmax' ? [opts.batch, width] : ls;
  if (loss !== 'outputs') {
    const z = loss === 'softmax' && ls.length !== 2 ? b.reshape(logits, teacherDims) : logits;
    const activate = (x: string) => (loss === 'softmax' ? b.op('Softmax', [x], { axis: 1 }) : b.op('Sigmoid', [x]));
    let dz = b.scale(b.sub(activate(b.scale(z, 1 / T)), TEACHER_INPUT), T / opts.batch);
    if (opts.labelWeight > 0) dz = b.add(dz, b.scale(b.sub(activate(z), LABEL_INPUT), opts.labelWeight / opts.batch));
    push(logits, z === logits ? dz : b.reshape(dz, ls));
  }
  // the outputs matched to dense are hint targets like the pruned layers' outputs: scale * ||t - target||^2 / 2
  const hints = [...matched, ...(opts.hints ?? []).filter((t) => t !== logits && !matched.includes(t) && shapes.has(t))];
  for (const t of hints) push(t, b.mul(b.sub(t, hintInput(t)), hintScale(t)));

  const shape = (t: string, node: NodeProto): number[] => {
    const s = shapes.get(t);
    if (!s) throw new UnsupportedOp(node.opType, node.name || node.output[0], `shape of '${t}' unknown`);
    return s;
  };
  const constIndex = index;
  for (const node of [...forward].reverse()) {
    if (NON_DIFFERENTIABLE.has(node.opType)) continue;
    const wants = node.input.map((i) => !!i && requires.has(i));
    if (!wants.some(Boolean)) continue;
    const dy = node.output.map((o) => (o ? gradOf(o) : undefined));
    if (!dy.some((d) => d !== undefined)) continue;
    const rule = GRAD_RULES[node.opType];
    if (!rule) throw new UnsupportedOp(node.opType, node.name || node.output[0], 'no gradient rule');
    const grads = rule({
      b,
      node,
      dy,
      wants,
      shape: (t) => shape(t, node),
      floats: (t) => {
        const c = constIndex.constant(t);
        return c ? tensorToFloat32(c) : undefined;
      },
      ints: (t) => {
        const c = constIndex.constant(t);
        return c ? tensorToInts(c) : undefined;
      },
    });
    node.input.forEach((i, k) => {
      if (wants[k] && grads[k]) push(i, grads[k]!);
    });
  }

  const kept: Trainable[] = [];
  const gradOutputs: string[] = [];
  for (const p of params) {
    const grad = gradOf(p.name);
    if (!grad) continue;
    kept.push(p);
    gradOutputs.push(b.op('Identity', [grad]));
  }

  ed.dropInitializerInputs();
  for (const decl of [
    ...(loss === 'outputs' ? [] : [floatValueInfo(TEACHER_INPUT, teacherDims)]),
    ...(opts.labelWeight > 0 && loss !== 'outputs' ? [floatValueInfo(LABEL_INPUT, teacherDims)] : []),
    ...hints.flatMap((t) => [floatValueInfo(hintInput(t), shapes.get(t)), floatValueInfo(hintScale(t), [1])]),
    ...params.map((p) => floatValueInfo(p.name, p.dims)),
  ])
    ed.addInput(decl);
  const shown = loss === 'outputs' ? matched : [logits];
  ed.setOutputs([...shown.map((t) => floatValueInfo(t, shapes.get(t))), ...gradOutputs.map((o, k) => floatValueInfo(o, kept[k].dims))]);
  ed.clearValueInfo();
  return { model: ed.model, params: kept, gradOutputs, logits, width, targetDims: teacherDims, batch: opts.batch, hints };
}

/** The forward model with `params` as inputs (any batch), so one session scores every epoch's weights. */
export function buildEvalGraph(model: ModelProto, params: readonly Trainable[], scores?: string | readonly string[]): { model: ModelProto; logits: string } {
  const ed = ModelEditor.copyOf(model);
  const index = new GraphIndex(ed.graph);
  const shown = typeof scores === 'string' ? [scores] : scores?.length ? [...scores] : [logitsTensor(ed.model)];
  ed.setNodes(ancestors(index, ...shown));
  ed.removeInitializers(params.map((p) => p.name).filter((name) => ed.initializer(name)));
  ed.dropInitializerInputs();
  for (const p of params) ed.addInput(floatValueInfo(p.name, p.dims));
  ed.setOutputs(shown.map((t) => floatValueInfo(t)));
  return { model: ed.model, logits: shown[0] };
}

/** A copy of `model` with the params' values written into its initializers. */
export function withParams(model: ModelProto, params: readonly { name: string; values: Float32Array }[]): ModelProto {
  const ed = ModelEditor.copyOf(model);
  for (const p of params) ed.replaceInitializer(p.name, p.values);
  return ed.model;
}
