/**
 * How closely a model's outputs follow a reference model's (the dense one) on the same inputs: the
 * quality measure for models without class labels to score against (detectors, embedding models,
 * segmenters) and for data without labels. Pure arithmetic over typed arrays, accumulated batch by
 * batch so no output has to be held for the whole set.
 */

/** One output of the judged model against the same output of the reference, over the whole set. */
export interface OutputFidelity {
  output: string;
  /** samples compared */
  samples: number;
  /** mean over samples of the cosine similarity of the flattened per-sample output vectors (1 when both are all zero) */
  cosine: number;
  /** ‖candidate − reference‖₂ / ‖reference‖₂ over every value of the output */
  rel_l2: number;
  /** largest |candidate − reference| over every value */
  max_abs: number;
  /** class-like outputs: share of positions (samples × positions before the last axis) with the same argmax over the last axis */
  top1_agreement?: number;
  /** class-like outputs with more than 5 classes: share of positions where the reference's top class is among the candidate's top 5 */
  top5_agreement?: number;
}

/** One output compared with the dense model's; `classes` when it scores classes (top-1/top-5 agreement over its last axis). */
export interface FidelityOutput {
  name: string;
  classes?: number;
}

/** The axis of an output scored as classes: the last one, `classes` wide. */
export interface ClassAxis {
  classes: number;
}

/** Running sums for one output; `add` each batch, `result` at the end. */
export class FidelityAccumulator {
  private samples = 0;
  private cosineSum = 0;
  private diffSq = 0;
  private refSq = 0;
  private maxAbs = 0;
  private positions = 0;
  private top1 = 0;
  private top5 = 0;
  private nonFinite = false;

  constructor(
    readonly output: string,
    private readonly classAxis?: ClassAxis,
  ) {}

  /** `reference` and `candidate` hold `count` samples each, row-major, the same number of values per sample. */
  add(reference: ArrayLike<number>, candidate: ArrayLike<number>, count: number): void {
    if (reference.length !== candidate.length) {
      throw new Error(`output ${this.output}: reference has ${reference.length} values but candidate ${candidate.length}`);
    }
    if (count <= 0) return;
    const width = reference.length / count;
    if (!Number.isInteger(width)) throw new Error(`output ${this.output}: ${reference.length} values do not split into ${count} samples`);
    for (let s = 0; s < count; s++) {
      let dot = 0;
      let ra = 0;
      let cb = 0;
      const base = s * width;
      for (let i = base; i < base + width; i++) {
        const a = reference[i];
        const b = candidate[i];
        const d = b - a;
        dot += a * b;
        ra += a * a;
        cb += b * b;
        this.diffSq += d * d;
        const abs = Math.abs(d);
        if (abs > this.maxAbs) this.maxAbs = abs;
        else if (!(abs <= this.maxAbs)) this.nonFinite = true; // NaN compares false both ways
      }
      this.refSq += ra;
      this.cosineSum += ra === 0 && cb === 0 ? 1 : dot / Math.max(Math.sqrt(ra) * Math.sqrt(cb), 1e-300);
    }
    this.samples += count;
    if (this.classAxis) this.addClasses(reference, candidate, this.classAxis.classes);
  }

  private addClasses(reference: ArrayLike<number>, candidate: ArrayLike<number>, classes: number): void {
    const rows = reference.length / classes;
    if (!Number.isInteger(rows)) throw new Error(`output ${this.output}: ${reference.length} values do not split into rows of ${classes} classes`);
    const topK = classes > 5;
    for (let r = 0; r < rows; r++) {
      const base = r * classes;
      const ref = argmax(reference, base, classes);
      const cand = argmax(candidate, base, classes);
      if (ref === cand) this.top1++;
      if (topK && rankOf(candidate, base, classes, ref) < 5) this.top5++;
    }
    this.positions += rows;
  }

  result(): OutputFidelity {
    const diff = Math.sqrt(this.diffSq);
    const ref = Math.sqrt(this.refSq);
    const out: OutputFidelity = {
      output: this.output,
      samples: this.samples,
      cosine: this.samples ? this.cosineSum / this.samples : NaN,
      rel_l2: ref > 0 ? diff / ref : diff === 0 ? 0 : Infinity,
      max_abs: this.nonFinite ? NaN : this.maxAbs,
    };
    if (this.classAxis && this.positions > 0) {
      out.top1_agreement = this.top1 / this.positions;
      if (this.classAxis.classes > 5) out.top5_agreement = this.top5 / this.positions;
    }
    return out;
  }
}

/** First index of the largest value in `x[base, base + n)`. */
function argmax(x: ArrayLike<number>, base: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[base + i] > x[base + best]) best = i;
  return best;
}

/** How many values of the row rank before index `k` (greater, or equal at a lower index: the same tie rule as argmax). */
function rankOf(x: ArrayLike<number>, base: number, n: number, k: number): number {
  const v = x[base + k];
  let rank = 0;
  for (let i = 0; i < n; i++) if (x[base + i] > v || (x[base + i] === v && i < k)) rank++;
  return rank;
}

/** Fidelity of one output over a whole set held at once. */
export function outputFidelity(output: string, reference: ArrayLike<number>, candidate: ArrayLike<number>, samples: number, classAxis?: ClassAxis): OutputFidelity {
  const acc = new FidelityAccumulator(output, classAxis);
  acc.add(reference, candidate, samples);
  return acc.result();
}
