/**
 * Which output of a model is judged, and what its values are: logits, probabilities or log-probabilities
 * over classes, or independent sigmoid probabilities (one binary decision, or several labels). Exporters
 * put shape-only ops after the last activation (Softmax then Flatten, a [N,C,1,1] Softmax squeezed), so
 * the walk goes back through them to the op that decides how the values are scored.
 */
import { GraphIndex, attrInt } from './graph.js';
import { elementTypes } from './elementTypes.js';
import { opsetVersion } from './model.js';
import type { ModelProto, NodeProto } from './proto/onnx_pb.js';
import { inferShapes } from './shapes.js';
import { DataType as DT, dataTypeName, FLOAT_TYPES, numel } from './tensor.js';

/** multiclass: one class per sample; binary: one sigmoid decision per sample; multilabel: K sigmoid decisions per sample */
export type Task = 'multiclass' | 'binary' | 'multilabel';
export type ScoreForm = 'logits' | 'probabilities' | 'log-probabilities';
export type Activation = 'Softmax' | 'LogSoftmax' | 'Sigmoid';

export interface Head {
  output: string;
  task: Task;
  /** what the output's values are: binary and multi-label outputs are sigmoid probabilities */
  form: ScoreForm;
  /** values per sample (classes, labels, or 1 for binary); null when the graph does not tell and the first batch will */
  width: number | null;
  /**
   * the tensor whose softmax (or sigmoid) is the model's distribution: the input of the final activation,
   * or the output itself for logits. Temperature scaling divides it; distillation matches it.
   */
  scores: string;
  activation?: Activation;
  /** shape-only ops between the activation (or the scores) and the output, in graph order */
  through: string[];
  /** ONNX element type of the output */
  elemType: number;
}

/** Why a model's output cannot be judged as a classifier, with what the user can do about it. */
export type HeadProblem =
  | { kind: 'several-outputs'; outputs: { name: string; dims: string }[] }
  | { kind: 'no-such-output'; asked: string; outputs: string[] }
  | { kind: 'not-float'; output: string; type: string }
  | { kind: 'not-scores'; output: string; dims: string }
  | { kind: 'single-score'; output: string }
  | { kind: 'softmax-axis'; output: string; axis: number; dims: string; activation: 'Softmax' | 'LogSoftmax' }
  | { kind: 'labels-matrix-for-classes'; output: string; labelWidth: number }
  | { kind: 'labels-not-binary'; output: string; value: number }
  | { kind: 'label-width'; output: string; labels: number; labelWidth: number }
  | { kind: 'no-labels'; data: string };

export type HeadResult = { ok: true; head: Head } | { ok: false; problem: HeadProblem };

/** Ops that move or rename values without changing them. */
const SHAPE_ONLY = new Set(['Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Transpose', 'Dropout']);
const ACTIVATIONS = new Set<string>(['Softmax', 'LogSoftmax', 'Sigmoid']);
const FORM: Record<Activation, ScoreForm> = { Softmax: 'probabilities', LogSoftmax: 'log-probabilities', Sigmoid: 'probabilities' };

const FIDELITY_LATER = 'or judge every output by its fidelity to the dense model with --task fidelity';

function showDims(dims: readonly (number | null)[] | undefined): string {
  return dims ? `[batch,${dims.map((d) => (d === null ? '?' : String(d))).join(',')}]` : '[?]';
}

/**
 * Per-sample dims of a tensor that the graph fixes, with null for dims it does not (a symbolic non-batch
 * dim follows whatever the batch is set to, so shapes at two batch sizes tell them apart).
 */
function perSampleDims(one: Map<string, number[]>, three: Map<string, number[]>, tensor: string): (number | null)[] | undefined {
  const a = one.get(tensor);
  const b = three.get(tensor);
  if (!a || !b || a.length === 0 || a.length !== b.length) return undefined;
  return a.slice(1).map((d, i) => (d === b[i + 1] ? d : null));
}

/** A Cast between float types keeps the values (up to rounding), so it does not change what they mean. */
function isFloatCast(node: NodeProto, types: Map<string, number>): boolean {
  return node.opType === 'Cast' && FLOAT_TYPES.has(attrInt(node, 'to', 0)) && FLOAT_TYPES.has(types.get(node.input[0]) ?? DT.FLOAT);
}

/**
 * The output to judge and how to read it. `output` names it (required when there are several); `labels`
 * describes the evaluation set's `y` when known (its width K for [N,K], whether any value is above 1), so
 * a sigmoid output whose width the graph does not fix is read as the labels say.
 */
export function findHead(model: ModelProto, opts: { output?: string; labelWidth?: number } = {}): HeadResult {
  const g = model.graph!;
  const index = new GraphIndex(g);
  const types = elementTypes(index);
  const one = inferShapes(index, 1).shapes;
  const three = inferShapes(index, 3).shapes;
  const dimsOfOutput = (name: string) => showDims(perSampleDims(one, three, name));
  let output: string;
  if (opts.output !== undefined) {
    if (!g.output.some((o) => o.name === opts.output)) return { ok: false, problem: { kind: 'no-such-output', asked: opts.output, outputs: g.output.map((o) => o.name) } };
    output = opts.output;
  } else if (g.output.length > 1) {
    return { ok: false, problem: { kind: 'several-outputs', outputs: g.output.map((o) => ({ name: o.name, dims: dimsOfOutput(o.name) })) } };
  } else output = g.output[0].name;

  const elemType = types.get(output) ?? DT.FLOAT;
  if (!FLOAT_TYPES.has(elemType) || elemType === DT.BFLOAT16) return { ok: false, problem: { kind: 'not-float', output, type: dataTypeName(elemType) } };

  const through: string[] = [];
  let tensor = output;
  let producer = index.producer.get(tensor);
  while (producer && (SHAPE_ONLY.has(producer.opType) || isFloatCast(producer, types))) {
    through.unshift(producer.opType);
    tensor = producer.input[0];
    producer = index.producer.get(tensor);
  }
  const activation = producer && ACTIVATIONS.has(producer.opType) ? (producer.opType as Activation) : undefined;
  const scores = activation ? producer!.input[0] : output;

  const dims = perSampleDims(one, three, output);
  if (dims && dims.filter((d) => d !== 1).length > 1) return { ok: false, problem: { kind: 'not-scores', output, dims: showDims(dims) } };
  const width = dims ? (dims.some((d) => d === null) ? null : numel(dims as number[])) : null;

  if (activation === 'Softmax' || activation === 'LogSoftmax') {
    const problem = softmaxAxisProblem(producer!, opsetVersion(model), one, output, activation);
    if (problem) return { ok: false, problem };
  }
  const base = { output, width, scores, through, elemType, ...(activation ? { activation } : {}) };
  if (activation === 'Sigmoid') {
    const labels = width ?? opts.labelWidth ?? 1;
    return { ok: true, head: { ...base, task: labels > 1 ? 'multilabel' : 'binary', form: 'probabilities', width: width ?? (opts.labelWidth !== undefined ? labels : null) } };
  }
  if (width === 1) return { ok: false, problem: { kind: 'single-score', output } };
  return { ok: true, head: { ...base, task: 'multiclass', form: activation ? FORM[activation] : 'logits' } };
}

/**
 * A Softmax is a distribution over classes only when it normalises one group per sample: its axis is
 * past the batch and (from opset 13 one axis, before it the flattened tail) covers every value of the sample.
 */
function softmaxAxisProblem(node: NodeProto, opset: number, shapes: Map<string, number[]>, output: string, activation: 'Softmax' | 'LogSoftmax'): HeadProblem | undefined {
  const s = shapes.get(node.input[0]);
  if (!s || s.length === 0) return undefined;
  let axis = attrInt(node, 'axis', opset >= 13 ? -1 : 1);
  if (axis < 0) axis += s.length;
  const perSample = numel(s.slice(1));
  const group = opset >= 13 ? s[axis] : numel(s.slice(axis));
  if (axis >= 1 && group === perSample) return undefined;
  return { kind: 'softmax-axis', output, axis, dims: `[${s.join(',')}]`, activation };
}

/**
 * The labels checked against the head: class ids for a softmax or logits output, 0/1 for a sigmoid, a
 * [N,K] 0/1 matrix with K equal to the output's labels for a multi-label sigmoid.
 */
export function checkLabels(head: Head, labels: Int32Array | null, labelWidth: number, data: string): HeadProblem | undefined {
  if (!labels) return { kind: 'no-labels', data };
  if (head.task === 'multiclass') return labelWidth > 1 ? { kind: 'labels-matrix-for-classes', output: head.output, labelWidth } : undefined;
  if (head.task === 'multilabel' && head.width !== null && labelWidth !== head.width) return { kind: 'label-width', output: head.output, labels: head.width, labelWidth };
  if (head.task === 'binary' && labelWidth !== 1) return { kind: 'label-width', output: head.output, labels: 1, labelWidth };
  for (let i = 0; i < labels.length; i++) if (labels[i] > 1) return { kind: 'labels-not-binary', output: head.output, value: labels[i] };
  return undefined;
}

/** One line for the user: what is wrong, what prune-guard supports, and how to adapt the model or the flags. */
export function headProblemMessage(p: HeadProblem, file: string): string {
  switch (p.kind) {
    case 'several-outputs':
      return `${file}: has ${p.outputs.length} outputs (${p.outputs.map((o) => `${o.name} ${o.dims}`).join(', ')}); prune-guard judges one classifier output of shape [batch, classes] (logits, probabilities or sigmoid): pass --output NAME (config 'output:') to choose it; ${FIDELITY_LATER}`;
    case 'no-such-output':
      return `--output ${p.asked}: the model has no output of that name; its outputs are ${p.outputs.map((o) => `'${o}'`).join(', ')}`;
    case 'not-float':
      return `${file}: output '${p.output}' holds ${p.type} values; prune-guard judges float scores per class (logits, probabilities or a sigmoid), so export the scores rather than ${p.type === 'INT64' || p.type === 'INT32' ? 'the predicted class ids' : `${p.type} values`}${p.type === 'BFLOAT16' ? ' (onnxruntime-node cannot read bfloat16 tensors: Cast the output to float32)' : ''}`;
    case 'not-scores':
      return `${file}: output '${p.output}' has shape ${p.dims}, not one score per class; prune-guard judges an output of shape [batch, classes] (or [batch, classes, 1, 1]), or a sigmoid [batch] / [batch, labels]: choose such an output with --output NAME; ${FIDELITY_LATER}`;
    case 'single-score':
      return `${file}: output '${p.output}' has one value per sample and no Sigmoid before it; prune-guard judges a binary classifier by its sigmoid probability: export it with torch.sigmoid(...) at the end (or two class logits), or choose another output with --output NAME`;
    case 'softmax-axis':
      return `${file}: output '${p.output}' comes from a ${p.activation} over axis ${p.axis} of ${p.dims}, which is not one distribution over classes per sample; export the ${p.activation} over the class axis (dim=1), or output the logits before it`;
    case 'labels-matrix-for-classes':
      return `y has ${p.labelWidth} columns, read as a multi-label 0/1 matrix, but output '${p.output}' scores one class per sample (softmax or logits); for one-hot class labels save y.argmax(axis=1), or judge a multi-label model by its sigmoid output`;
    case 'labels-not-binary':
      return `y holds the value ${p.value}, but output '${p.output}' is a sigmoid, judged as 0/1 decisions at 0.5; labels must be 0 or 1 (for classes, export a softmax or the logits instead)`;
    case 'label-width':
      return `y has ${p.labelWidth} label${p.labelWidth > 1 ? 's' : ''} per sample but sigmoid output '${p.output}' has ${p.labels}; save y with shape [N, ${p.labels}]${p.labels === 1 ? ' or [N]' : ''} (one 0/1 column per output label)`;
    case 'no-labels':
      return `${p.data}: no label array 'y'; prune-guard judges classifiers against labels: add y=labels (class ids, or a 0/1 [N,K] matrix for a multi-label sigmoid) to the .npz; ${FIDELITY_LATER}`;
  }
}
