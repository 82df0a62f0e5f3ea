/** Row-wise softmax of [rows, classes] logits divided by `temperature`, as float64. */
export function softmaxRows(logits: ArrayLike<number>, rows: number, classes: number, temperature = 1): Float64Array {
  const out = new Float64Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, logits[r * classes + k] / temperature);
    let sum = 0;
    for (let k = 0; k < classes; k++) {
      const e = Math.exp(logits[r * classes + k] / temperature - max);
      out[r * classes + k] = e;
      sum += e;
    }
    for (let k = 0; k < classes; k++) out[r * classes + k] /= sum;
  }
  return out;
}

/**
 * The distillation objective the training graph differentiates, averaged over rows:
 * T^2 KL(p_teacher || softmax(z/T)) + w CE(onehot, softmax(z)).
 */
export function distillLoss(logits: ArrayLike<number>, teacherProbs: ArrayLike<number>, onehot: ArrayLike<number> | undefined, rows: number, classes: number, temperature: number, labelWeight: number): number {
  const ps = softmaxRows(logits, rows, classes, temperature);
  const p1 = onehot && labelWeight > 0 ? softmaxRows(logits, rows, classes, 1) : undefined;
  let loss = 0;
  for (let i = 0; i < rows * classes; i++) {
    const pt = teacherProbs[i];
    if (pt > 0) loss += temperature * temperature * pt * (Math.log(pt) - Math.log(Math.max(ps[i], 1e-30)));
    if (p1 && onehot![i] > 0) loss -= labelWeight * onehot![i] * Math.log(Math.max(p1[i], 1e-30));
  }
  return loss / rows;
}
