import type { Dataset } from '../../data/dataset.js';
import { UserError } from '../../errors.js';
import { findHead, headProblemMessage, type Head, type Task } from '../head.js';
import type { ModelProto } from '../proto/onnx_pb.js';
import { runBatches } from './batches.js';
import type { OrtSession } from './ort.js';
import { P_FLOOR, scoreRow, scoreSigmoid } from './scores.js';

/**
 * What one pass of a classifier over a set leaves behind: enough for every metric we report. The unit is
 * the decision: one per sample for a softmax or a binary sigmoid, K per sample (sample-major) for a
 * multi-label sigmoid, each scored like a two-way choice.
 */
export interface Predictions {
  /** how the output was read: one class per sample, or sigmoid decisions */
  task: Task;
  /** groups per-class results are reported by: the classes (multiclass, binary: 0 and 1), or the labels (multi-label) */
  classes: number;
  /** choices per decision: the classes, or 2 for a sigmoid decision */
  choices: number;
  /** decisions per sample */
  perSample: number;
  pred: Int32Array;
  /** probability of the predicted choice */
  confidence: Float32Array;
  /** 1 where the prediction equals the label */
  correct: Uint8Array;
  /** log-probability of the true label, per decision */
  logProbLabel: Float32Array;
  /** the true label of each decision (a class id, or 0/1); 0 when the set has no labels */
  truth: Int32Array;
  /** the group each decision is reported under: its true class, or its label's index (multi-label) */
  group: Int32Array;
  /**
   * [decisions, choices] scores whose softmax is the model's distribution (logits, log-probabilities, or
   * [log(1-p), log p] for a sigmoid), kept only when asked: temperature fitting and sensitivity need them
   */
  logits?: Float32Array;
}

export interface EvaluateOptions {
  batchSize: number;
  /** the output to judge and how to read it (findHead); the model's only output as a classifier when absent */
  head?: Head;
  keepLogits?: boolean;
  /**
   * the set has no labels (a shift set for prediction-distribution tests): only `pred` and
   * `confidence` are meaningful; `correct` is all 0 and `logProbLabel` NaN
   */
  unlabelled?: boolean;
  /** for messages: the model file */
  modelPath: string;
  onBatch?: (done: number, total: number) => void;
}

/** The head of a model with one classifier output (what in-memory recovery scoring assumes when not told). */
export function defaultHead(model: ModelProto, output?: string): Head {
  const r = findHead(model, { output });
  if (!r.ok) throw new UserError(headProblemMessage(r.problem, 'model'));
  return r.head;
}

/** Rows of a probability output must sum to 1; a sum far off means the output is not what the graph walk took it for. */
const SUM_TOLERANCE = 0.02;

/**
 * Run a classifier over a set in batches. Only per-decision scalars are kept, so memory stays
 * O(decisions), not O(samples x classes), unless logits are asked for.
 */
export async function evaluateClassifier(session: OrtSession, data: Dataset, opts: EvaluateOptions): Promise<Predictions> {
  if (!data.labels && !opts.unlabelled) throw new UserError(`${data.path}: no label array 'y'; add y=labels (integer class ids) to the .npz`);
  let head = opts.head;
  if (!head) {
    if (session.outputNames.length !== 1) {
      throw new UserError(`${opts.modelPath}: has ${session.outputNames.length} outputs (${session.outputNames.join(', ')}); pass --output NAME to choose the classifier output to judge`);
    }
    head = { output: session.outputNames[0], task: 'multiclass', form: 'logits', width: null, scores: session.outputNames[0], through: [], elemType: 1 };
  }
  const sigmoid = head.task !== 'multiclass';
  const labels = data.labels && !opts.unlabelled ? data.labels : null;
  const n = data.count;
  let perSample = 0;
  let decisions = 0;
  let pred = new Int32Array(0);
  let confidence = new Float32Array(0);
  let correct = new Uint8Array(0);
  let logProbLabel = new Float32Array(0);
  let truth = new Int32Array(0);
  let group = new Int32Array(0);
  let logits: Float32Array | undefined;
  let width0 = 0;
  const choicesOf = (width: number) => (sigmoid ? 2 : width);
  await runBatches(session, data, opts.batchSize, [head.output], (values, start, count) => {
    const out = values.get(head.output)!;
    const width = count > 0 ? out.data.length / count : 0;
    if (out.dims[0] !== count || !Number.isInteger(width)) {
      throw new UserError(`${opts.modelPath}: output '${head.output}' has shape [${out.dims}] for ${count} samples, expected [batch, classes]`);
    }
    if (perSample === 0) {
      if (width < 1 || (!sigmoid && width < 2)) throw new UserError(`${opts.modelPath}: output '${head.output}' has ${width} value(s) per sample; prune-guard judges [batch, classes] scores with at least 2 classes, or a sigmoid`);
      perSample = sigmoid ? width : 1;
      width0 = width;
      decisions = n * perSample;
      pred = new Int32Array(decisions);
      confidence = new Float32Array(decisions);
      correct = new Uint8Array(decisions);
      logProbLabel = new Float32Array(decisions);
      truth = new Int32Array(decisions);
      group = new Int32Array(decisions);
      if (opts.keepLogits) logits = new Float32Array(decisions * choicesOf(width));
      if (head.form === 'probabilities' && !sigmoid) checkRowSums(out.data, width, count, head, opts.modelPath);
      if (labels && (data.labelWidth ?? 1) !== perSample) {
        throw new UserError(`${data.path}: y has ${data.labelWidth ?? 1} label(s) per sample but output '${head.output}' gives ${perSample} decision(s) per sample; save y with shape [N${perSample > 1 ? `, ${perSample}` : ''}]`);
      }
    } else if (width !== width0) {
      throw new UserError(`${opts.modelPath}: output '${head.output}' changed width between batches (${width} values per sample)`);
    }
    const v = out.data;
    if (sigmoid) {
      for (let k = 0; k < count * width; k++) {
        const d = start * width + k;
        const y = labels ? labels[d] : 0;
        const s = scoreSigmoid(v[k], y);
        pred[d] = s.pred;
        confidence[d] = s.confidence;
        correct[d] = labels && s.pred === y ? 1 : 0;
        logProbLabel[d] = labels ? s.logProbLabel : NaN;
        truth[d] = y;
        group[d] = width > 1 ? k % width : y;
        if (logits) {
          const p = Math.min(Math.max(v[k], P_FLOOR), 1 - P_FLOOR);
          logits[2 * d] = Math.log(1 - p);
          logits[2 * d + 1] = Math.log(p);
        }
      }
    } else {
      for (let i = 0; i < count; i++) {
        const d = start + i;
        const y = labels ? labels[d] : 0;
        if (y >= width) {
          throw new UserError(`${data.path}: label ${y} at index ${d} is out of range for a model with ${width} classes; labels must be 0..${width - 1}`);
        }
        const s = scoreRow(v, i * width, width, y, head.form);
        pred[d] = s.pred;
        confidence[d] = s.confidence;
        correct[d] = labels && s.pred === y ? 1 : 0;
        logProbLabel[d] = labels ? s.logProbLabel : NaN;
        truth[d] = y;
        group[d] = y;
      }
      if (logits) {
        const rows = v.subarray(0, count * width);
        if (head.form === 'probabilities') for (let k = 0; k < rows.length; k++) logits[start * width + k] = Math.log(Math.max(rows[k], P_FLOOR));
        else logits.set(rows, start * width);
      }
    }
    opts.onBatch?.(start + count, n);
  });
  const classes = sigmoid ? (perSample > 1 ? perSample : 2) : width0;
  return { task: head.task, classes, choices: sigmoid ? 2 : classes, perSample, pred, confidence, correct, logProbLabel, truth, group, logits };
}

function checkRowSums(v: Float32Array, width: number, count: number, head: Head, modelPath: string): void {
  for (let i = 0; i < count; i++) {
    let sum = 0;
    for (let c = 0; c < width; c++) sum += v[i * width + c];
    if (Math.abs(sum - 1) > SUM_TOLERANCE) {
      throw new UserError(`${modelPath}: output '${head.output}' is read as probabilities (a Softmax${head.through.length ? ` then ${head.through.join(', ')}` : ''}), but a row sums to ${sum.toFixed(4)}; export the logits, or the Softmax over the class axis as the output`);
    }
  }
}
