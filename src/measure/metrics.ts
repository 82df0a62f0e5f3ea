/**
 * Classification metrics over predictions held in typed arrays. Pure functions: the evaluation loop
 * collects predictions, confidences and label log-probabilities, these turn them into numbers.
 */

export function accuracy(pred: Int32Array, labels: Int32Array): number {
  let hit = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) hit++;
  return labels.length ? hit / labels.length : NaN;
}

/** Accuracy per class; null for a class with no sample in the set (nothing to measure). */
export function perClassAccuracy(pred: Int32Array, labels: Int32Array, classes: number): (number | null)[] {
  const hit = new Float64Array(classes);
  const support = classSupport(labels, classes);
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) hit[labels[i]]++;
  return Array.from(support, (n, c) => (n ? hit[c] / n : null));
}

export function classSupport(labels: Int32Array, classes: number): number[] {
  const support = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) support[labels[i]]++;
  return support;
}

/** rows: true class, columns: predicted class */
export function confusionMatrix(pred: Int32Array, labels: Int32Array, classes: number): number[][] {
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) m[labels[i]][pred[i]]++;
  return m;
}

/**
 * Expected calibration error with equal-width confidence bins (Guo et al. 2017): the support-weighted
 * mean |accuracy - confidence| over bins. Bin b holds confidences in (b/B, (b+1)/B]; 0 goes to bin 0.
 */
export function expectedCalibrationError(confidence: Float32Array, correct: Uint8Array, bins = 15): number {
  const n = confidence.length;
  const count = new Float64Array(bins);
  const conf = new Float64Array(bins);
  const hit = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(confidence[i] * bins) - 1));
    count[b]++;
    conf[b] += confidence[i];
    hit[b] += correct[i];
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) if (count[b]) ece += Math.abs(hit[b] - conf[b]) / n;
  return ece;
}

/** Fraction of samples on which two models predict the same class. */
export function agreement(a: Int32Array, b: Int32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return a.length ? same / a.length : NaN;
}

/**
 * One row of logits (or probabilities, when the model ends in Softmax) to: predicted class, its
 * probability, and the log-probability of `label`. Log-softmax is computed stably (max subtracted).
 */
export function scoreRow(row: ArrayLike<number>, offset: number, classes: number, label: number, areProbabilities: boolean): { pred: number; confidence: number; logProbLabel: number } {
  let pred = 0;
  let max = -Infinity;
  for (let c = 0; c < classes; c++) {
    const v = row[offset + c];
    if (v > max) {
      max = v;
      pred = c;
    }
  }
  if (areProbabilities) {
    const p = row[offset + label];
    return { pred, confidence: max, logProbLabel: Math.log(Math.max(p, 1e-12)) };
  }
  let sum = 0;
  for (let c = 0; c < classes; c++) sum += Math.exp(row[offset + c] - max);
  const logSum = Math.log(sum);
  return { pred, confidence: 1 / sum, logProbLabel: row[offset + label] - max - logSum };
}
