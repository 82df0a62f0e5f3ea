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

/** Accuracy per reporting group (class, or label of a multi-label model); null for a group with no decision. */
export function groupAccuracy(correct: Uint8Array, group: Int32Array, groups: number): (number | null)[] {
  const hit = new Float64Array(groups);
  const support = new Float64Array(groups);
  for (let i = 0; i < correct.length; i++) {
    support[group[i]]++;
    hit[group[i]] += correct[i];
  }
  return Array.from(support, (n, g) => (n ? hit[g] / n : null));
}

/** Decisions per reporting group. */
export function groupSupport(group: Int32Array, groups: number): number[] {
  const support = new Array<number>(groups).fill(0);
  for (let i = 0; i < group.length; i++) support[group[i]]++;
  return support;
}

/**
 * F1 of the positive decision for each of `labels` sample-major 0/1 columns (one column: a binary
 * classifier). Null for a label with neither a positive label nor a positive prediction (F1 undefined).
 */
export function labelF1(pred: Int32Array, truth: Int32Array, labels: number): (number | null)[] {
  const tp = new Float64Array(labels);
  const fp = new Float64Array(labels);
  const fn = new Float64Array(labels);
  for (let i = 0; i < pred.length; i++) {
    const k = i % labels;
    if (pred[i] === 1 && truth[i] === 1) tp[k]++;
    else if (pred[i] === 1) fp[k]++;
    else if (truth[i] === 1) fn[k]++;
  }
  return Array.from(tp, (t, k) => (t + fp[k] + fn[k] > 0 ? (2 * t) / (2 * t + fp[k] + fn[k]) : null));
}

/** Mean of the defined values; null when none is. */
export function meanDefined(values: readonly (number | null)[]): number | null {
  const defined = values.filter((v): v is number => v !== null);
  return defined.length ? defined.reduce((a, b) => a + b, 0) / defined.length : null;
}
