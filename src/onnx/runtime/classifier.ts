import type { Dataset } from '../../data/dataset.js';
import { sliceBatch } from '../../data/dataset.js';
import { UserError } from '../../errors.js';
import { GraphIndex } from '../graph.js';
import type { ModelProto } from '../proto/onnx_pb.js';
import { onnxruntime, type OrtSession } from './ort.js';
import { scoreRow } from './scores.js';

/** What one pass of a classifier over a labelled set leaves behind: enough for every metric we report. */
export interface Predictions {
  classes: number;
  pred: Int32Array;
  /** probability of the predicted class */
  confidence: Float32Array;
  /** 1 where the prediction equals the label */
  correct: Uint8Array;
  /** log-probability of the true label, per sample */
  logProbLabel: Float32Array;
  /** raw outputs [count, classes], kept only when asked (temperature fitting needs them) */
  logits?: Float32Array;
}

export interface EvaluateOptions {
  batchSize: number;
  /** the model's last op is Softmax: outputs are probabilities, not logits */
  outputsAreProbabilities: boolean;
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

/** A model that ends in Softmax already outputs probabilities; scoring must not softmax them again. */
export function endsInSoftmax(model: ModelProto): boolean {
  const index = new GraphIndex(model.graph!);
  return index.producer.get(model.graph!.output[0]?.name)?.opType === 'Softmax';
}

/**
 * Run a one-output classifier over a labelled set in batches. Only per-sample scalars are kept, so
 * memory stays O(samples), not O(samples x classes), unless logits are asked for.
 */
export async function evaluateClassifier(session: OrtSession, data: Dataset, opts: EvaluateOptions): Promise<Predictions> {
  if (!data.labels && !opts.unlabelled) throw new UserError(`${data.path}: no label array 'y'; add y=labels (integer class ids) to the .npz`);
  if (session.outputNames.length !== 1) {
    throw new UserError(`${opts.modelPath}: has ${session.outputNames.length} outputs (${session.outputNames.join(', ')}); prune-guard evaluates classifiers with one logits output`);
  }
  const { ort } = onnxruntime();
  const labels = data.labels ?? new Int32Array(data.count);
  const n = data.count;
  const pred = new Int32Array(n);
  const confidence = new Float32Array(n);
  const correct = new Uint8Array(n);
  const logProbLabel = new Float32Array(n);
  let classes = 0;
  let logits: Float32Array | undefined;
  for (let start = 0; start < n; start += opts.batchSize) {
    const end = Math.min(n, start + opts.batchSize);
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
    for (const [name, arr] of sliceBatch(data, start, end)) {
      feeds[name] = new ort.Tensor(arr.dtype, arr.data as never, arr.dims);
    }
    const result = await session.run(feeds);
    const out = result[session.outputNames[0]];
    if (out.dims.length !== 2 || out.dims[0] !== end - start) {
      throw new UserError(`${opts.modelPath}: output has shape [${out.dims}], expected [batch, classes]; prune-guard evaluates classifiers with one logits output`);
    }
    const values = out.data as Float32Array;
    if (classes === 0) {
      classes = out.dims[1];
      if (opts.keepLogits) logits = new Float32Array(n * classes);
    }
    for (let i = 0; i < end - start; i++) {
      const label = labels[start + i];
      if (label >= classes) {
        throw new UserError(`${data.path}: label ${label} at index ${start + i} is out of range for a model with ${classes} classes; labels must be 0..${classes - 1}`);
      }
      const s = scoreRow(values, i * classes, classes, label, opts.outputsAreProbabilities);
      pred[start + i] = s.pred;
      confidence[start + i] = s.confidence;
      correct[start + i] = !data.labels ? 0 : s.pred === label ? 1 : 0;
      logProbLabel[start + i] = !data.labels ? NaN : s.logProbLabel;
    }
    logits?.set(values, start * classes);
    for (const t of Object.values(result)) t.dispose();
    opts.onBatch?.(end, n);
  }
  return { classes, pred, confidence, correct, logProbLabel, logits };
}
