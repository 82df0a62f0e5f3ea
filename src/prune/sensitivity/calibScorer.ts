import type { Dataset } from '../../data/dataset.js';
import { takeSamples } from '../../data/dataset.js';
import { UserError } from '../../errors.js';
import { defaultHead, evaluateClassifier } from '../../onnx/runtime/classifier.js';
import type { Head } from '../../onnx/head.js';
import type { OrtSession } from '../../onnx/runtime/ort.js';
import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import { sessionFromModel } from '../../onnx/runtime/session.js';

/** One point of a sensitivity curve, measured on the (capped) calibration set. */
export interface CalibPoint {
  /** labels: mean NLL of the true label; no labels: mean KL(dense || model) */
  nll: number;
  /** labels: top-1 accuracy; no labels: top-1 agreement with the dense model */
  accuracy: number;
}

export interface CalibScorer {
  /** what `nll` and `accuracy` mean for this calibration set */
  against: 'labels' | 'dense';
  samples: number;
  dense: CalibPoint;
  score(model: ModelProto): Promise<CalibPoint>;
}

/** Sensitivity curves need many evaluations; this many samples rank layers well and keep each one fast. */
export const DEFAULT_SENSITIVITY_SAMPLES = 256;

/** Evenly spaced samples (not the first n), so a calibration file sorted by class still covers every class. */
export function evenSubset(data: Dataset, max: number): Dataset {
  if (data.count <= max) return data;
  const idx = Array.from({ length: max }, (_, i) => Math.floor((i * data.count) / max));
  return takeSamples(data, idx);
}

/** Log-probabilities [decisions, choices] of a classifier over the whole set, and the label of each decision. */
async function logProbs(session: OrtSession, data: Dataset, head: Head): Promise<{ classes: number; count: number; values: Float64Array; labels: Int32Array | null }> {
  // the shared evaluator batches, feeds and checks the output shape; only the full rows are needed here
  const p = await evaluateClassifier(session, data, { batchSize: 256, head, keepLogits: true, unlabelled: !data.labels, modelPath: 'calibration' });
  const classes = p.choices;
  const raw = p.logits!;
  const values = new Float64Array(raw.length);
  for (let o = 0; o < values.length; o += classes) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, raw[o + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(raw[o + c] - max);
    const lse = max + Math.log(sum);
    for (let c = 0; c < classes; c++) values[o + c] = raw[o + c] - lse;
  }
  return { classes, count: p.pred.length, values, labels: data.labels ? p.truth : null };
}

function argmax(v: Float64Array, o: number, n: number): number {
  let best = 0;
  for (let c = 1; c < n; c++) if (v[o + c] > v[o + best]) best = c;
  return best;
}

/** Against labels when the set has them; else against the dense model's own predictions (KL, agreement). */
function compare(lp: Float64Array, classes: number, count: number, labels: Int32Array | null, dense: Float64Array | null): CalibPoint {
  let nll = 0;
  let hits = 0;
  for (let i = 0; i < count; i++) {
    const o = i * classes;
    const pred = argmax(lp, o, classes);
    if (labels) {
      if (labels[i] < 0 || labels[i] >= classes) {
        throw new UserError(`calibration set: label ${labels[i]} at index ${i} is out of range for a model with ${classes} classes; labels must be 0..${classes - 1}`);
      }
      nll -= lp[o + labels[i]];
      hits += pred === labels[i] ? 1 : 0;
    } else {
      let kl = 0;
      for (let c = 0; c < classes; c++) {
        const pd = Math.exp(dense![o + c]);
        if (pd > 0) kl += pd * (dense![o + c] - lp[o + c]);
      }
      nll += Math.max(0, kl);
      hits += pred === argmax(dense!, o, classes) ? 1 : 0;
    }
  }
  return { nll: nll / count, accuracy: hits / count };
}

/**
 * Scores models on at most `maxSamples` calibration samples with in-memory onnxruntime sessions.
 * The dense model is scored first: without labels it is the reference every other model is compared to.
 */
export async function calibScorer(dense: ModelProto, calib: Dataset, opts: { maxSamples?: number; threads?: number; head?: Head } = {}): Promise<CalibScorer> {
  const data = evenSubset(calib, opts.maxSamples ?? DEFAULT_SENSITIVITY_SAMPLES);
  const head = opts.head ?? defaultHead(dense);
  const run = async (model: ModelProto) => {
    const session = await sessionFromModel(model, opts.threads ?? 0);
    try {
      return await logProbs(session, data, head);
    } finally {
      await session.release();
    }
  };
  const ref = await run(dense);
  const denseRef = data.labels ? null : ref.values;
  return {
    against: data.labels ? 'labels' : 'dense',
    samples: data.count,
    dense: compare(ref.values, ref.classes, ref.count, ref.labels, denseRef),
    score: async (model) => {
      const r = await run(model);
      return compare(r.values, r.classes, r.count, r.labels, denseRef);
    },
  };
}
