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
  classes: number;
  batch: number;
  /** the hint tensors the graph takes targets for */
  hints: string[];
}

export const TEACHER_INPUT = 'pg_teacher_probs';
export const LABEL_INPUT = 'pg_label_onehot';
export const hintInput = (t: string) => `pg_hint/${t}`;
export const hintScale = (t: string) => `pg_hint_scale/${t}`;

export interface TrainGraphOptions {
  batch: number;
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

function isTrainableUse(index: GraphIndex, tensor: string, seen = new Set<string>()): boolean {
  if (seen.has(tensor)) return false;
  seen.add(tensor);
  for (const n of index.consumersOf(tensor)) {
    // exporters share equal initializers through Identity (one BatchNorm bias feeding two layers)
    if (n.opType === 'Identity' && isTrainableUse(index, n.output[0], seen)) return true;
    const slots = TRAINABLE_SLOTS[n.opType];
    if (!slots) continue;
    if (slots.some((s) => n.input[s] === tensor)) {
      if ((n.opType === 'Add' || n.opType === 'Sub' || n.opType === 'Mul') && numel(tensorDims(index.initializers.get(tensor)!)) < 2) continue;
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

/** Nodes the tensor `target` depends on, in topological order. */
function ancestors(index: GraphIndex, target: string): NodeProto[] {
  const needed = new Set<NodeProto>();
  const stack = [target];
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
  const logits = logitsTensor(ed.model);
  const ls = shapes.get(logits);
  if (!ls || ls.length !== 2) throw new UnsupportedOp('output', logits, `logits of shape ${ls ? `[${ls.join(',')}]` : 'unknown'}, need [batch, classes]`);
  const classes = ls[1];
  const forward = ancestors(index, logits);
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

  // d/dz of T^2 KL(p_t || softmax(z/T)) + w CE(y, softmax(z)), averaged over the batch
  const T = opts.temperature;
  const ps = b.op('Softmax', [b.scale(logits, 1 / T)], { axis: 1 });
  let dz = b.scale(b.sub(ps, TEACHER_INPUT), T / opts.batch);
  if (opts.labelWeight > 0) dz = b.add(dz, b.scale(b.sub(b.op('Softmax', [logits], { axis: 1 }), LABEL_INPUT), opts.labelWeight / opts.batch));
  push(logits, dz);
  const hints = (opts.hints ?? []).filter((t) => t !== logits && shapes.has(t));
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
    floatValueInfo(TEACHER_INPUT, [opts.batch, classes]),
    ...(opts.labelWeight > 0 ? [floatValueInfo(LABEL_INPUT, [opts.batch, classes])] : []),
    ...hints.flatMap((t) => [floatValueInfo(hintInput(t), shapes.get(t)), floatValueInfo(hintScale(t), [1])]),
    ...params.map((p) => floatValueInfo(p.name, p.dims)),
  ])
    ed.addInput(decl);
  ed.setOutputs([floatValueInfo(logits), ...gradOutputs.map((o) => floatValueInfo(o))]);
  ed.clearValueInfo();
  return { model: ed.model, params: kept, gradOutputs, logits, classes, batch: opts.batch, hints };
}

/** The forward model with `params` as inputs (any batch), so one session scores every epoch's weights. */
export function buildEvalGraph(model: ModelProto, params: readonly Trainable[]): { model: ModelProto; logits: string } {
  const ed = ModelEditor.copyOf(model);
  const index = new GraphIndex(ed.graph);
  const logits = logitsTensor(ed.model);
  ed.setNodes(ancestors(index, logits));
  ed.removeInitializers(params.map((p) => p.name).filter((name) => ed.initializer(name)));
  ed.dropInitializerInputs();
  for (const p of params) ed.addInput(floatValueInfo(p.name, p.dims));
  ed.setOutputs([floatValueInfo(logits)]);
  return { model: ed.model, logits };
}

/** A copy of `model` with the params' values written into its initializers. */
export function withParams(model: ModelProto, params: readonly { name: string; values: Float32Array }[]): ModelProto {
  const ed = ModelEditor.copyOf(model);
  for (const p of params) ed.replaceInitializer(p.name, p.values);
  return ed.model;
}
