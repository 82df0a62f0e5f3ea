import type { BudgetName } from '../../config/budgets.js';
import type { Predictions } from '../../onnx/runtime/classifier.js';
import { pairedMedianRatio } from '../latency.js';
import { bootstrapInterval, quantileInterval } from './bootstrap.js';
import { describeDecision, inBudgetTerms, type SequentialQuantity, type SequentialRecord } from './sequential.js';
import { mcnemarExact, minSamplesForDrop, pairedDifferenceInterval, pairedTable, type PairedTable } from './mcnemar.js';
import { wilsonInterval, type Interval } from './wilson.js';

/** One class's accuracy from the reference (dense, or base in compare mode) to the judged model: a row of the ledger's class_changes. */
export interface ClassChange {
  class: number;
  dense: number;
  pruned: number;
  drop: number;
  support: number;
  /** paired (Newcombe) interval of the drop at the ledger's confidence */
  drop_ci?: [number, number];
  /** McNemar's exact test of dense vs final on this class's samples */
  p_value?: number;
  /** the whole drop interval exceeds the class-accuracy-drop budget */
  beyond_budget?: boolean;
}

/** How uncertain a budget's measured value is; computed from raw samples here. */
export interface Uncertainty {
  ci: [number, number];
  p_value?: number;
  /** appended to the detail, e.g. "too few samples to decide: need about 4000" */
  note?: string;
  /** the point estimate the interval belongs to, when it is not the budget's own measurement */
  estimate?: number;
  /** a latency decision made by sampling until the interval cleared the limit or a cap */
  sequential?: SequentialRecord;
}

/** The speed budgets decided by the paired sequential test, and what each one's limit bounds. */
export const SEQUENTIAL_BUDGETS = { 'latency-regression': 'slowdown', 'min-speedup': 'speedup' } as const satisfies Partial<Record<BudgetName, SequentialQuantity>>;
export type SequentialBudget = keyof typeof SEQUENTIAL_BUDGETS;
/** Per speed budget, the sequential decision taken on the reference and judged model's rounds. */
export type SequentialDecisions = Partial<Record<SequentialBudget, SequentialRecord>>;

/** Everything measured on a reference model (dense, or base in compare mode) and the model judged. */
export interface PairedMeasurements {
  labels: Int32Array;
  reference: Predictions;
  candidate: Predictions;
  /** timed runs at the primary batch size, paired by round */
  referenceLatency?: readonly number[];
  candidateLatency?: readonly number[];
  /** per speed budget, the sequential decision, when the rounds were sampled until it decided */
  latencyDecisions?: SequentialDecisions;
  /** per shift set name, predictions of both models (labelled sets only) */
  shifts?: { name: string; labels: Int32Array; reference: Predictions; candidate: Predictions }[];
  confidence: number;
  /** budget limits, to say how many samples a straddling interval would need */
  limits: Partial<Record<BudgetName, number>>;
}

function subsetTable(a: Uint8Array, b: Uint8Array, keep: (i: number) => boolean): PairedTable {
  const t = { both: 0, onlyA: 0, onlyB: 0, neither: 0 };
  for (let i = 0; i < a.length; i++) {
    if (!keep(i)) continue;
    if (a[i]) {
      if (b[i]) t.both++;
      else t.onlyA++;
    } else if (b[i]) t.onlyB++;
    else t.neither++;
  }
  return t;
}

const total = (t: PairedTable): number => t.both + t.onlyA + t.onlyB + t.neither;

/** When the interval straddles the limit: how many samples would settle a drop of `limit`. */
function sampleNote(t: PairedTable, ci: Interval, limit: number | undefined, confidence: number, what: string): string | undefined {
  if (limit === undefined || !(ci[0] <= limit && limit < ci[1]) || limit <= 0) return undefined;
  const n = total(t);
  const discordant = (t.onlyA + t.onlyB) / Math.max(1, n);
  const need = minSamplesForDrop(limit, discordant, confidence);
  return need > n ? `too few samples to decide: ${what} has ${n}, about ${need} needed to resolve a ${(limit * 100).toFixed(2)} pt drop` : undefined;
}

/** Accuracy drop (reference − candidate) with Newcombe's paired interval and McNemar's exact p. */
export function accuracyDropUncertainty(reference: Uint8Array, candidate: Uint8Array, confidence: number, limit?: number): Uncertainty {
  const t = pairedTable(reference, candidate);
  const ci = pairedDifferenceInterval(t, confidence);
  return { ci, p_value: mcnemarExact(t.onlyA, t.onlyB), note: sampleNote(t, ci, limit, confidence, 'the set') };
}

/** ECE over the samples at `indices`, 15 equal-width bins as in metrics.expectedCalibrationError. */
export function eceAt(confidence: Float32Array, correct: Uint8Array, indices: Int32Array, bins = 15): number {
  const count = new Float64Array(bins);
  const gap = new Float64Array(bins);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(confidence[i] * bins) - 1));
    count[b]++;
    gap[b] += correct[i] - confidence[i];
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) if (count[b]) ece += Math.abs(gap[b]) / indices.length;
  return ece;
}

/** Per-class drops with their paired intervals and McNemar p-values, in class order. */
export function classDropIntervals(m: PairedMeasurements): { class: number; ci: Interval; p_value: number; table: PairedTable }[] {
  const out: { class: number; ci: Interval; p_value: number; table: PairedTable }[] = [];
  for (let c = 0; c < m.reference.classes; c++) {
    const t = subsetTable(m.reference.correct, m.candidate.correct, (i) => m.labels[i] === c);
    if (total(t) === 0) continue;
    out.push({ class: c, ci: pairedDifferenceInterval(t, m.confidence), p_value: mcnemarExact(t.onlyA, t.onlyB), table: t });
  }
  return out;
}

/**
 * The interval of a maximum over groups (classes, shift sets): [max of lower bounds, max of upper
 * bounds]. It lies wholly beyond a limit exactly when some group's interval does, and wholly within
 * exactly when every group's does, so the budget verdict is the worst group verdict.
 */
function maxInterval(cis: readonly Interval[]): Interval {
  return [Math.max(...cis.map((c) => c[0])), Math.max(...cis.map((c) => c[1]))];
}

/**
 * Each speed budget's sequential decision as its interval, estimate and note, in the budget's own terms
 * (a slowdown, or a speedup over the reference): what every mode judges those budgets on.
 */
export function decidedUncertainty(decisions: SequentialDecisions, limits: Partial<Record<BudgetName, number>>): Partial<Record<SequentialBudget, Uncertainty>> {
  const u: Partial<Record<SequentialBudget, Uncertainty>> = {};
  for (const name of Object.keys(SEQUENTIAL_BUDGETS) as SequentialBudget[]) {
    const d = decisions[name];
    const limit = limits[name];
    if (!d || limit === undefined) continue;
    const { estimate, ci } = inBudgetTerms(d, SEQUENTIAL_BUDGETS[name]);
    u[name] = { ci, estimate, note: describeDecision(d, limit, SEQUENTIAL_BUDGETS[name]), sequential: d };
  }
  return u;
}

/** Intervals for every budget whose value is an estimate from samples. */
export function budgetUncertainty(m: PairedMeasurements): Partial<Record<BudgetName, Uncertainty>> {
  const { confidence } = m;
  const u: Partial<Record<BudgetName, Uncertainty>> = {};
  u['accuracy-drop'] = accuracyDropUncertainty(m.reference.correct, m.candidate.correct, confidence, m.limits['accuracy-drop']);

  const classes = classDropIntervals(m);
  if (classes.length) {
    const ci = maxInterval(classes.map((c) => c.ci));
    const limit = m.limits['class-accuracy-drop'];
    const smallest = classes.reduce((a, b) => (total(a.table) < total(b.table) ? a : b));
    const note = sampleNote(smallest.table, ci, limit, confidence, `class ${smallest.class}`);
    u['class-accuracy-drop'] = { ci, note };
  }

  const n = m.labels.length;
  u['ece-increase'] = {
    ci: bootstrapInterval(n, (idx) => eceAt(m.candidate.confidence, m.candidate.correct, idx) - eceAt(m.reference.confidence, m.reference.correct, idx), { confidence, resamples: 500 }),
  };

  if (m.referenceLatency?.length && m.candidateLatency?.length) {
    const speedup = pairedMedianRatio(m.referenceLatency, m.candidateLatency, confidence);
    const slowdown = pairedMedianRatio(m.candidateLatency, m.referenceLatency, confidence);
    u['min-speedup'] = { ci: speedup.ci };
    u['latency-regression'] = { ci: [slowdown.ci[0] - 1, slowdown.ci[1] - 1] };
    Object.assign(u, decidedUncertainty(m.latencyDecisions ?? {}, m.limits));
    u['p95-latency-ms'] = { ci: quantileInterval(m.candidateLatency, 0.95, { confidence, resamples: 500 }) };
  }

  if (m.shifts?.length) {
    const cis = m.shifts.map((s) => accuracyDropUncertainty(s.reference.correct, s.candidate.correct, confidence).ci);
    u['shift-accuracy-drop'] = { ci: maxInterval(cis) };
  }
  if (m.reference.task !== 'multiclass') u['label-f1-drop'] = { ci: labelF1DropInterval(m.reference, m.candidate, confidence) };
  return u;
}

/** Wilson intervals of overall and per-class accuracy for one model's predictions. */
export function accuracyIntervals(p: Predictions, labels: Int32Array, confidence: number): { accuracy_ci: Interval; per_class_ci: (Interval | null)[] } {
  const hit = new Float64Array(p.classes);
  const support = new Float64Array(p.classes);
  let all = 0;
  for (let i = 0; i < labels.length; i++) {
    support[labels[i]]++;
    if (p.correct[i]) {
      hit[labels[i]]++;
      all++;
    }
  }
  return {
    accuracy_ci: wilsonInterval(all, labels.length, confidence),
    per_class_ci: Array.from(support, (s, c) => (s ? wilsonInterval(hit[c], s, confidence) : null)),
  };
}

/** Adds each class's drop interval, p-value and whether the drop is beyond `limit` with significance. */
export function annotateClassChanges(changes: ClassChange[], m: PairedMeasurements, limit: number | undefined): ClassChange[] {
  const byClass = new Map(classDropIntervals(m).map((c) => [c.class, c]));
  return changes.map((c) => {
    const s = byClass.get(c.class);
    if (!s) return c;
    return { ...c, drop_ci: s.ci, p_value: s.p_value, ...(limit !== undefined ? { beyond_budget: s.ci[0] > limit } : {}) };
  });
}

/**
 * Bootstrap interval of the largest per-label F1 drop (reference − candidate), resampling samples with all
 * their labels, so labels that move together are not counted as independent evidence.
 */
export function labelF1DropInterval(reference: Predictions, candidate: Predictions, confidence: number): Interval {
  const k = reference.perSample;
  const samples = reference.pred.length / k;
  const counts = (p: Predictions, idx: Int32Array): Float64Array => {
    // per label: true positives, false positives, false negatives
    const c = new Float64Array(3 * k);
    for (let j = 0; j < idx.length; j++) {
      const base = idx[j] * k;
      for (let l = 0; l < k; l++) {
        const pr = p.pred[base + l];
        const y = p.truth[base + l];
        if (pr === 1 && y === 1) c[3 * l]++;
        else if (pr === 1) c[3 * l + 1]++;
        else if (y === 1) c[3 * l + 2]++;
      }
    }
    return c;
  };
  const f1 = (c: Float64Array, l: number): number | null => {
    const d = 2 * c[3 * l] + c[3 * l + 1] + c[3 * l + 2];
    return d > 0 ? (2 * c[3 * l]) / d : null;
  };
  return bootstrapInterval(samples, (idx) => {
    const a = counts(reference, idx);
    const b = counts(candidate, idx);
    let worst = -Infinity;
    for (let l = 0; l < k; l++) {
      const x = f1(a, l);
      const y = f1(b, l);
      if (x !== null && y !== null) worst = Math.max(worst, x - y);
    }
    return Number.isFinite(worst) ? worst : NaN;
  }, { confidence, resamples: 500 });
}
