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

/** Elementwise sigmoid(z / temperature) as float64: each value one decision's probability. */
export function sigmoidValues(logits: ArrayLike<number>, temperature = 1): Float64Array {
  return Float64Array.from({ length: logits.length }, (_, i) => 1 / (1 + Math.exp(-logits[i] / temperature)));
}

const xlogy = (p: number, q: number): number => (p > 0 ? p * (Math.log(p) - Math.log(Math.max(q, 1e-30))) : 0);

/**
 * The sigmoid form of distillLoss: every value is a decision, its loss T^2 KL of the teacher's two-way
 * distribution (p_t, 1 - p_t) to sigmoid(z/T)'s, plus w times binary cross-entropy with a 0/1 label; summed
 * per sample (over its decisions), averaged over rows.
 */
export function sigmoidDistillLoss(logits: ArrayLike<number>, teacherProbs: ArrayLike<number>, labels: ArrayLike<number> | undefined, rows: number, temperature: number, labelWeight: number): number {
  const ps = sigmoidValues(logits, temperature);
  const p1 = labels && labelWeight > 0 ? sigmoidValues(logits, 1) : undefined;
  let loss = 0;
  for (let i = 0; i < ps.length; i++) {
    const pt = teacherProbs[i];
    loss += temperature * temperature * (xlogy(pt, ps[i]) + xlogy(1 - pt, 1 - ps[i]));
    if (p1) loss -= labelWeight * (labels![i] > 0 ? Math.log(Math.max(p1[i], 1e-30)) : Math.log(Math.max(1 - p1[i], 1e-30)));
  }
  return loss / rows;
}

/** KL(teacher || student) summed over a row's decisions and averaged over rows, with the student's accuracy against labels. */
export function sigmoidHeldOut(studentLogits: ArrayLike<number>, teacherProbs: ArrayLike<number>, labels: ArrayLike<number> | null, rows: number): { kl: number; accuracy?: number } {
  const ps = sigmoidValues(studentLogits, 1);
  let kl = 0;
  let correct = 0;
  for (let i = 0; i < ps.length; i++) {
    kl += xlogy(teacherProbs[i], ps[i]) + xlogy(1 - teacherProbs[i], 1 - ps[i]);
    if (labels && (ps[i] >= 0.5 ? 1 : 0) === labels[i]) correct++;
  }
  return { kl: kl / rows, ...(labels ? { accuracy: correct / ps.length } : {}) };
}

/**
 * Mean over outputs of ‖student − dense‖² / ‖dense‖²: the square of the relative L2 error the fidelity
 * budgets judge, so each output counts alike whatever its scale (0 for an output whose dense values are all 0).
 */
export function relativeSquaredError(student: ReadonlyMap<string, ArrayLike<number>>, dense: ReadonlyMap<string, ArrayLike<number>>): number {
  let total = 0;
  for (const [name, s] of student) {
    const t = dense.get(name)!;
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < t.length; i++) {
      const d = s[i] - t[i];
      diff += d * d;
      norm += t[i] * t[i];
    }
    total += norm > 0 ? diff / norm : 0;
  }
  return student.size ? total / student.size : 0;
}
