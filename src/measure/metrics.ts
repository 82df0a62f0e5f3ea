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

/** Fraction of samples on which two models predict the same class. */
export function agreement(a: Int32Array, b: Int32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return a.length ? same / a.length : NaN;
}
