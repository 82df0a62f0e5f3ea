/**
 * What a run judges quality by. A single-output classifier with labelled data is judged on its labels
 * (classification); anything else (data without labels, a detector's several outputs, an embedding) by
 * how closely each output of the pruned model follows the dense model's on the same inputs (fidelity).
 */
import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { elementTypes } from '../onnx/elementTypes.js';
import { GraphIndex } from '../onnx/graph.js';
import { checkLabels, findHead, headProblemMessage, type Head, type HeadProblem } from '../onnx/head.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { DataType as DT, dataTypeName } from '../onnx/tensor.js';
import { judgedHead } from './exported.js';
import type { FidelityOutput } from '../measure/fidelity.js';

/** Why a run judges fidelity. */
export type FidelityReason =
  /** `task: fidelity` */
  | { kind: 'asked' }
  /** the evaluation set has no `y` */
  | { kind: 'no-labels'; data: string }
  /** the model is not one classifier output (several outputs, an embedding, a per-pixel map) */
  | { kind: 'not-classifier'; problem: HeadProblem };

export type JudgedTask =
  | { task: 'classification'; head: Head }
  | { task: 'fidelity'; reason: FidelityReason; outputs: FidelityOutput[]; skipped: { name: string; type: string }[] };

/** Head problems that say the model is not a single-output classifier (rather than that the data or the flags are wrong). */
const NOT_A_CLASSIFIER: ReadonlySet<HeadProblem['kind']> = new Set(['several-outputs', 'not-scores', 'single-score', 'softmax-axis']);

/** Element types whose values onnxruntime-node hands back as numbers (bfloat16 it cannot read). */
const READABLE: ReadonlySet<number> = new Set([DT.FLOAT, DT.FLOAT16, DT.DOUBLE]);

/**
 * The task of a run on `model` with evaluation set `data`: `task: classification` judges the labels (and
 * refuses, in one line, what it cannot judge); `fidelity` compares outputs; `auto` judges fidelity when
 * the data has no labels or the model is not a single-output classifier.
 */
export function chooseTask(model: ModelProto, file: string, config: Pick<Config, 'task' | 'output'>, data: Dataset): JudgedTask {
  if (config.task === 'classification') return { task: 'classification', head: judgedHead(model, file, config, data) };
  if (config.task === 'fidelity') return fidelity(model, file, { kind: 'asked' });
  const found = findHead(model, { output: config.output, labelWidth: data.labels ? (data.labelWidth ?? 1) : undefined });
  if (!found.ok) {
    if (NOT_A_CLASSIFIER.has(found.problem.kind)) return fidelity(model, file, { kind: 'not-classifier', problem: found.problem });
    throw new UserError(headProblemMessage(found.problem, file));
  }
  if (!data.labels) return fidelity(model, file, { kind: 'no-labels', data: data.path });
  const problem = checkLabels(found.head, data.labels, data.labelWidth ?? 1, data.path);
  if (problem) throw new UserError(`${data.path}: ${headProblemMessage(problem, file)}`);
  return { task: 'classification', head: found.head };
}

function fidelity(model: ModelProto, file: string, reason: FidelityReason): JudgedTask {
  const types = elementTypes(new GraphIndex(model.graph!));
  const outputs: FidelityOutput[] = [];
  const skipped: { name: string; type: string }[] = [];
  for (const o of model.graph!.output) {
    const type = types.get(o.name) ?? DT.FLOAT;
    if (!READABLE.has(type)) {
      skipped.push({ name: o.name, type: dataTypeName(type).toLowerCase() });
      continue;
    }
    const head = findHead(model, { output: o.name });
    const classes = head.ok && head.head.task === 'multiclass' && head.head.width !== null ? head.head.width : undefined;
    outputs.push({ name: o.name, ...(classes !== undefined ? { classes } : {}) });
  }
  if (outputs.length === 0) {
    throw new UserError(`${file}: no output holds float values (${skipped.map((s) => `${s.name}: ${s.type}`).join(', ')}); fidelity compares float outputs with the dense model's: export the scores or features as float32 or float16`);
  }
  return { task: 'fidelity', reason, outputs, skipped };
}

function reasonText(r: FidelityReason): string {
  switch (r.kind) {
    case 'asked':
      return 'as configured';
    case 'no-labels':
      return `${r.data} has no labels 'y'`;
    case 'not-classifier':
      return notClassifier(r.problem);
  }
}

function notClassifier(p: HeadProblem): string {
  switch (p.kind) {
    case 'several-outputs':
      return `the model has ${p.outputs.length} outputs`;
    case 'not-scores':
      return `output '${p.output}' of shape ${p.dims} is not one score per class`;
    case 'softmax-axis':
      return `output '${p.output}' is a ${p.activation} over axis ${p.axis}, not over classes`;
    case 'single-score':
      return `output '${p.output}' is one value per sample without a Sigmoid`;
    default:
      return 'the model is not a single-output classifier';
  }
}

/** The one line a run prints (and the ledger keeps) when it judges fidelity, with what overrides it. */
export function taskLine(t: Extract<JudgedTask, { task: 'fidelity' }>): string {
  const outputs = t.outputs.map((o) => `'${o.name}'`).join(', ');
  const skipped = t.skipped.length ? `; not compared (not float): ${t.skipped.map((s) => `'${s.name}' (${s.type})`).join(', ')}` : '';
  const override = t.reason.kind === 'asked' ? '' : '; --task classification (config task:) judges labels instead';
  return `task: fidelity (${reasonText(t.reason)}): ${t.outputs.length > 1 ? 'outputs' : 'output'} ${outputs} judged against the dense model's on the same inputs${skipped}${override}`;
}
