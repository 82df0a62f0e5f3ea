/**
 * Pure maths over a classifier's outputs, shared by evaluation, calibration-set scoring and temperature
 * fitting: one row of logits (or probabilities) to a prediction, and the calibration error of a set.
 */

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
