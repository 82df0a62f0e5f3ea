import type { Dataset } from '../data/dataset.js';
import { loadDataset, sliceBatch } from '../data/dataset.js';
import { evaluateBudgets, overallVerdict, type ResolvedBudget } from '../ledger/budgets.js';
import type { BaseComparison, BudgetName, Step } from '../ledger/types.js';
import { latencyStat, measureInterleaved } from '../measure/latency.js';
import { loadModel } from '../onnx/model.js';
import { modelInputs } from '../onnx/signature.js';
import type { Config } from '../config/schema.js';

/**
 * Budgets that mean something between two shipped models (base and head): "worse than base by more than
 * the budget". min-speedup (against the dense input) and the absolute limits are already checked on head.
 */
const VS_BASE: ReadonlySet<BudgetName> = new Set(['accuracy-drop', 'class-accuracy-drop', 'ece-increase', 'latency-regression', 'shift-accuracy-drop']);

/**
 * Re-times the two shipped models interleaved in one process: latency from two separate runs would
 * compare two moments of a noisy runner, not two models.
 */
async function timeTogether(base: Step, head: Step, headModel: string, data: string, config: Config): Promise<[Step, Step]> {
  const dataset: Dataset = loadDataset(data, modelInputs(loadModel(headModel).proto, headModel), { requireLabels: false, modelPath: headModel });
  const source = sliceBatch(dataset, 0, Math.min(dataset.count, config.batchSizes[0]));
  const [[b], [h]] = await measureInterleaved([base.artifact, head.artifact], source, { ...config.latency, batchSizes: [config.batchSizes[0]] });
  const batch = config.batchSizes[0];
  return [
    { ...base, latency: latencyStat(batch, b) },
    { ...head, latency: latencyStat(batch, h) },
  ];
}

/**
 * The head's final model checked against the base's final model. The adapter is small on purpose: when
 * the pipeline grows its own compare mode this is the one place to switch over.
 */
export async function compareWithBase(
  opts: { ref: string; baseModel: string; baseSteps: Step[]; headSteps: Step[]; headModel: string; data: string; config: Config; budgets: readonly ResolvedBudget[] },
): Promise<BaseComparison> {
  const budgets = opts.budgets.filter((b) => VS_BASE.has(b.name));
  let base = opts.baseSteps[opts.baseSteps.length - 1];
  let head = opts.headSteps[opts.headSteps.length - 1];
  if (budgets.some((b) => b.name === 'latency-regression')) [base, head] = await timeTogether(base, head, opts.headModel, opts.data, opts.config);
  const results = evaluateBudgets(budgets, { dense: base, final: head, base });
  return { ref: opts.ref, model: opts.baseModel, steps: opts.baseSteps, budgets: results, verdict: overallVerdict(results.map((r) => r.verdict)) };
}
