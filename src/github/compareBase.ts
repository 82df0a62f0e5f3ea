import type { Config } from '../config/schema.js';
import type { ResolvedBudget } from '../ledger/budgets.js';
import type { BaseComparison, BudgetName, Step } from '../ledger/types.js';
import { compareBudgets, measurePair } from '../pipeline/compare.js';
import type { Progress } from '../io/progress.js';
import { judgeWithIntervals } from '../pipeline/verdicts.js';

/**
 * Budgets that mean something between two shipped models (base and head): "worse than base by more than
 * the budget". min-speedup (against the dense input) and the absolute limits are already checked on head.
 */
const VS_BASE: ReadonlySet<BudgetName> = new Set(['accuracy-drop', 'class-accuracy-drop', 'ece-increase', 'latency-regression', 'shift-accuracy-drop', 'label-f1-drop']);

/**
 * The head's shipped model judged against the base's shipped model by the pipeline's compare mode: both
 * evaluated on the same data and timed interleaved in one process, each budget judged on its interval.
 */
export async function compareWithBase(
  opts: { ref: string; baseModel: string; baseSteps: Step[]; headSteps: Step[]; data: string; shifts: { name: string; path: string }[]; config: Config; budgets: readonly ResolvedBudget[] },
  progress: Progress,
): Promise<BaseComparison> {
  const base = opts.baseSteps[opts.baseSteps.length - 1].artifact;
  const head = opts.headSteps[opts.headSteps.length - 1].artifact;
  progress.note(`comparing with base: ${opts.baseModel} at ${opts.ref.slice(0, 12)}`);
  const budgets = compareBudgets(opts.budgets).filter((b) => VS_BASE.has(b.name));
  const m = await measurePair({ base, head, data: opts.data, shifts: opts.shifts, config: opts.config }, progress, budgets);
  const judged = judgeWithIntervals(budgets, m.base, m.head, m.data, m.shifts, { reference: m.samples[0][0], candidate: m.samples[1][0], decisions: m.decisions }, opts.config, true);
  return { ref: opts.ref, model: opts.baseModel, steps: opts.baseSteps, pair: [m.base.step, m.head.step], budgets: judged.budgets, verdict: judged.verdict };
}
