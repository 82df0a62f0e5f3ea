import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import { evaluateBudgets, overallVerdict, type ResolvedBudget } from '../ledger/budgets.js';
import type { BudgetResult, ClassChange, Verdict } from '../ledger/types.js';
import { accuracyIntervals, annotateClassChanges, budgetUncertainty, type PairedMeasurements } from '../measure/stats/uncertainty.js';
import type { MeasuredStep } from './measureStep.js';

export interface Judged {
  budgets: BudgetResult[];
  verdict: Verdict;
  classChanges: ClassChange[];
}

/**
 * Budgets of `candidate` against `reference` (dense vs final in `run`, base vs head in `compare`),
 * each judged on its confidence interval. Also writes Wilson intervals into both steps.
 * `latency` holds the primary-batch timed runs of the two models, paired by round.
 */
export function judgeWithIntervals(
  budgets: readonly ResolvedBudget[],
  reference: MeasuredStep,
  candidate: MeasuredStep,
  data: Dataset,
  shifts: readonly { name: string; data: Dataset }[],
  latency: { reference: readonly number[]; candidate: readonly number[] } | undefined,
  config: Config,
  classChanges: ClassChange[],
  compareMode = false,
): Judged {
  const labels = data.labels!;
  const confidence = config.confidence;
  for (const m of [reference, candidate]) Object.assign(m.step, accuracyIntervals(m.preds, labels, confidence));
  const paired: PairedMeasurements = {
    labels,
    reference: reference.preds,
    candidate: candidate.preds,
    referenceLatency: latency?.reference,
    candidateLatency: latency?.candidate,
    shifts: shifts
      .filter((s) => s.data.labels && reference.shiftPreds?.has(s.name) && candidate.shiftPreds?.has(s.name))
      .map((s) => ({ name: s.name, labels: s.data.labels!, reference: reference.shiftPreds!.get(s.name)!, candidate: candidate.shiftPreds!.get(s.name)! })),
    confidence,
    limits: Object.fromEntries(budgets.map((b) => [b.name, b.limit])),
  };
  const measurements = compareMode
    ? { dense: reference.step, final: candidate.step, base: reference.step }
    : { dense: reference.step, final: candidate.step };
  const results = evaluateBudgets(budgets, { ...measurements, uncertainty: budgetUncertainty(paired) }, { strict: config.strict, confidence });
  const classLimit = budgets.find((b) => b.name === 'class-accuracy-drop')?.limit;
  return {
    budgets: results,
    verdict: overallVerdict(results.map((b) => b.verdict)),
    classChanges: annotateClassChanges(classChanges, paired, classLimit),
  };
}
