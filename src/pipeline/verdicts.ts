import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import { evaluateBudgets, overallVerdict, type ResolvedBudget } from '../ledger/budgets.js';
import type { BudgetResult, ClassChange, DistributionShift, PredictionShift, ShiftResult, Step, Verdict } from '../ledger/types.js';
import { groupSupport } from '../measure/metrics.js';
import type { Predictions } from '../onnx/runtime/classifier.js';
import { chiSquareHomogeneity, kolmogorovSmirnov, populationStabilityIndex } from '../measure/stats/distribution.js';
import { accuracyDropUncertainty, accuracyIntervals, annotateClassChanges, budgetUncertainty, type PairedMeasurements, type SequentialDecisions } from '../measure/stats/uncertainty.js';
import type { Reduction } from '../prune/reduction.js';
import type { MeasuredStep } from './measureStep.js';

export interface Judged {
  budgets: BudgetResult[];
  verdict: Verdict;
  classChanges: ClassChange[];
}

/** Per-class (per-label) accuracy changes from the reference step to the candidate, largest drop first; `group` is each decision's class or label. */
export function classChanges(reference: Step, candidate: Step, group: Int32Array, classes: number): ClassChange[] {
  const support = groupSupport(group, classes);
  const changes: ClassChange[] = [];
  reference.per_class!.forEach((d, c) => {
    const f = candidate.per_class![c];
    if (d === null || f === null) return;
    changes.push({ class: c, dense: d, pruned: f, drop: d - f, support: support[c] });
  });
  return changes.sort((a, b) => b.drop - a.drop || a.class - b.class);
}

/** Primary-batch timed runs of the reference and the judged model, paired by round, and the speed budgets' sequential decisions on them. */
export interface PairedLatency {
  reference: readonly number[];
  candidate: readonly number[];
  decisions?: SequentialDecisions;
}

/**
 * Budgets of `candidate` against `reference` (dense vs final in `run`, base vs head in `compare`),
 * each judged on its confidence interval, and the per-class changes between them. Also writes Wilson
 * intervals into both steps. `latency` holds the primary-batch timed runs of the two models, paired by round.
 */
export function judgeWithIntervals(
  budgets: readonly ResolvedBudget[],
  reference: MeasuredStep,
  candidate: MeasuredStep,
  data: Dataset,
  shifts: readonly { name: string; data: Dataset }[],
  latency: PairedLatency | undefined,
  config: Config,
  compareMode = false,
  reduction?: Reduction,
): Judged {
  // per-class statistics are taken per reporting group: the true class, or the label of a multi-label model
  const groups = reference.preds.group;
  const confidence = config.confidence;
  for (const m of [reference, candidate]) Object.assign(m.step, accuracyIntervals(m.preds, groups, confidence));
  const paired: PairedMeasurements = {
    labels: groups,
    reference: reference.preds,
    candidate: candidate.preds,
    referenceLatency: latency?.reference,
    candidateLatency: latency?.candidate,
    ...(latency?.decisions ? { latencyDecisions: latency.decisions } : {}),
    shifts: shifts
      .filter((s) => s.data.labels && reference.shiftPreds?.has(s.name) && candidate.shiftPreds?.has(s.name))
      .map((s) => ({ name: s.name, labels: reference.shiftPreds!.get(s.name)!.group, reference: reference.shiftPreds!.get(s.name)!, candidate: candidate.shiftPreds!.get(s.name)! })),
    confidence,
    limits: Object.fromEntries(budgets.map((b) => [b.name, b.limit])),
  };
  const measurements = compareMode
    ? { dense: reference.step, final: candidate.step, base: reference.step }
    : { dense: reference.step, final: candidate.step };
  // comparing two models, or quantizing alone, prunes nothing: there is no requested reduction to fall short of
  const judgedBudgets = compareMode || !reduction ? budgets.filter((b) => b.name !== 'target-reduction') : budgets;
  const results = evaluateBudgets(judgedBudgets, { ...measurements, ...(reduction ? { reduction } : {}), uncertainty: budgetUncertainty(paired) }, { strict: config.strict, confidence });
  const classLimit = budgets.find((b) => b.name === 'class-accuracy-drop')?.limit;
  return {
    budgets: results,
    verdict: overallVerdict(results.map((b) => b.verdict)),
    classChanges: annotateClassChanges(classChanges(reference.step, candidate.step, groups, reference.preds.classes), paired, classLimit),
  };
}

/**
 * Accuracy of both models on every shift set, the drop with its paired interval, and how much the
 * shift widens the reference-vs-candidate gap compared with clean data.
 */
export function shiftResults(
  reference: MeasuredStep,
  candidate: MeasuredStep,
  shifts: readonly { name: string; data: Dataset }[],
  corruptionNames: ReadonlySet<string>,
  confidence: number,
): ShiftResult[] {
  const cleanGap = (reference.step.accuracy ?? 0) - (candidate.step.accuracy ?? 0);
  const out: ShiftResult[] = [];
  for (const s of shifts) {
    const a = reference.shiftPreds?.get(s.name);
    const b = candidate.shiftPreds?.get(s.name);
    if (!a || !b || !s.data.labels) continue;
    const dense = mean(a.correct);
    const final = mean(b.correct);
    const u = accuracyDropUncertainty(a.correct, b.correct, confidence);
    out.push({
      name: s.name,
      source: corruptionNames.has(s.name) ? 'corruption' : 'user',
      samples: s.data.count,
      dense,
      final,
      drop: dense - final,
      drop_ci: u.ci,
      p_value: u.p_value,
      gap_change: dense - final - cleanGap,
    });
  }
  return out;
}

function mean(x: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return x.length ? s / x.length : NaN;
}

function distributionShift(clean: Predictions, shifted: Predictions): DistributionShift {
  const ks = kolmogorovSmirnov(clean.confidence, shifted.confidence);
  const hist = (p: Predictions) => {
    const h = new Array<number>(p.choices).fill(0);
    for (let i = 0; i < p.pred.length; i++) h[p.pred[i]]++;
    return h;
  };
  const chi = chiSquareHomogeneity(hist(clean), hist(shifted));
  return { ks: ks.statistic, ks_p: ks.p_value, psi: populationStabilityIndex(clean.confidence, shifted.confidence), chi2: chi.statistic, chi2_df: chi.df, chi2_p: chi.p_value };
}

/** Prediction-distribution tests of every shift set (labelled or not) against the clean set, per model. */
export function predictionShifts(reference: MeasuredStep, candidate: MeasuredStep, shifts: readonly { name: string; data: Dataset }[]): PredictionShift[] {
  const out: PredictionShift[] = [];
  for (const s of shifts) {
    const a = reference.shiftPreds?.get(s.name);
    const b = candidate.shiftPreds?.get(s.name);
    if (!a || !b) continue;
    out.push({ name: s.name, samples: s.data.count, labelled: !!s.data.labels, dense: distributionShift(reference.preds, a), final: distributionShift(candidate.preds, b) });
  }
  return out;
}
