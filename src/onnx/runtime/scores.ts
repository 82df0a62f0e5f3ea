/**
 * Pure maths over a classifier's outputs, shared by evaluation, calibration-set scoring and temperature
 * fitting: one row of logits (or probabilities) to a prediction, and the calibration error of a set.
 */

/** Probabilities are clamped to this before a log, so a saturated output gives a large finite NLL, not Infinity. */
export const P_FLOOR = 1e-12;

/** Sigmoid outputs at or above this are the positive decision. */
export const SIGMOID_THRESHOLD = 0.5;

/**
 * One row of class scores to: predicted class, its probability, and the log-probability of `label`.
 * `form` says what the row holds: logits (log-softmax is computed stably, max subtracted), probabilities
 * (a Softmax output: used as they are, clamped before the log) or log-probabilities (a LogSoftmax output).
 */
export function scoreRow(row: ArrayLike<number>, offset: number, classes: number, label: number, form: 'logits' | 'probabilities' | 'log-probabilities'): { pred: number; confidence: number; logProbLabel: number } {
  let pred = 0;
  let max = -Infinity;
  for (let c = 0; c < classes; c++) {
    const v = row[offset + c];
    if (v > max) {
      max = v;
      pred = c;
    }
  }
  if (form === 'probabilities') {
    const p = row[offset + label];
    return { pred, confidence: max, logProbLabel: Math.log(Math.max(p, P_FLOOR)) };
  }
  if (form === 'log-probabilities') return { pred, confidence: Math.exp(max), logProbLabel: row[offset + label] };
  let sum = 0;
  for (let c = 0; c < classes; c++) sum += Math.exp(row[offset + c] - max);
  const logSum = Math.log(sum);
  return { pred, confidence: 1 / sum, logProbLabel: row[offset + label] - max - logSum };
}

/**
 * One sigmoid probability as a two-way decision: 1 at p >= 0.5, the probability of that decision, and the
 * log-probability of label `y` (0 or 1), with p clamped to [P_FLOOR, 1 - P_FLOOR] as binary cross-entropy is.
 */
export function scoreSigmoid(p: number, y: number): { pred: number; confidence: number; logProbLabel: number } {
  const pred = p >= SIGMOID_THRESHOLD ? 1 : 0;
  const q = Math.min(Math.max(p, P_FLOOR), 1 - P_FLOOR);
  return { pred, confidence: pred ? q : 1 - q, logProbLabel: y === 1 ? Math.log(q) : Math.log(1 - q) };
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
