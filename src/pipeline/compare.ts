import * as fs from 'node:fs';
import { refuseInputsInOutput } from '../io/inputPaths.js';
import * as path from 'node:path';
import { checkMeasureConfig } from '../config/rules.js';
import type { Config } from '../config/schema.js';
import { loadDataset, type Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { type ResolvedBudget } from '../ledger/budgets.js';
import { BUDGETS, BUDGET_NAMES } from '../config/budgets.js';
import { ledgerEnvelope } from '../ledger/envelope.js';
import { resolveProvider, type ResolvedProvider } from '../measure/provider.js';
import { loadModel } from '../onnx/model.js';
import { modelInputs } from '../onnx/signature.js';
import { prunableWeights } from '../prune/prunable.js';
import { buildModelLedger, LEDGER_FILES, measuredRuntime, writeLedgerFiles } from './ledger.js';
import { openOutput } from './guardedRun.js';
import type { Ledger } from '../ledger/types.js';
import { measureStep, type MeasuredStep } from './measureStep.js';
import type { Progress } from '../io/progress.js';
import type { RunResult } from './request.js';
import { corruptionSets } from '../measure/corruptions.js';
import { judgeWithIntervals } from './verdicts.js';
import { batchPlan, judgedHead, type BatchPlan } from './exported.js';
import type { Head } from '../onnx/head.js';
import { timeSteps } from './timeSteps.js';
import type { SequentialDecisions } from '../measure/stats/uncertainty.js';
import { speedTests } from './speedDecisions.js';

export interface CompareRequest {
  base: string;
  head: string;
  data: string;
  shifts: { name: string; path: string }[];
  out: string;
  config: Config;
  budgets: ResolvedBudget[];
}

/** Compare mode always checks latency: a 5% slowdown is the limit unless the user sets one. */
export const DEFAULT_LATENCY_REGRESSION = 0.05;

/** The run budgets (but `target-reduction`: nothing is pruned) plus `latency-regression`, kept in BUDGETS order. */
export function compareBudgets(budgets: readonly ResolvedBudget[]): ResolvedBudget[] {
  // nothing is pruned in a comparison: no requested reduction to fall short of; and it judges labels, so
  // the fidelity default (a floor on outputs against a dense model) does not apply
  const all = budgets.filter((b) => b.name !== 'target-reduction' && !(b.source === 'default' && BUDGETS[b.name].task === 'fidelity'));
  if (!all.some((b) => b.name === 'latency-regression')) {
    all.push({ name: 'latency-regression', limit: DEFAULT_LATENCY_REGRESSION, direction: BUDGETS['latency-regression'].direction, source: 'default' });
  }
  return all.sort((a, b) => BUDGET_NAMES.indexOf(a.name) - BUDGET_NAMES.indexOf(b.name));
}

/** Both models must take the same inputs, or there is nothing to compare them on. */
function loadFor(models: { path: string; inputs: ReturnType<typeof modelInputs> }[], file: string, requireLabels: boolean): Dataset {
  const [first, ...rest] = models;
  const data = loadDataset(file, first.inputs, { requireLabels, modelPath: first.path });
  for (const m of rest) loadDataset(file, m.inputs, { requireLabels, modelPath: m.path });
  return data;
}

export interface MeasuredPair {
  base: MeasuredStep;
  head: MeasuredStep;
  data: Dataset;
  shifts: { name: string; data: Dataset }[];
  /** per model, per batch size, timed runs paired by round */
  samples: number[][][];
  /** the speed budgets' sequential decisions at the first batch size */
  decisions: SequentialDecisions;
  provider: ResolvedProvider;
  /** the output both models were judged on */
  judged: Head;
  plan: BatchPlan;
}

/**
 * Evaluate both models on the same data and time them interleaved, sampling until every speed budget
 * among `budgets` is decided; shared by compare and selftest.
 */
export async function measurePair(req: Omit<CompareRequest, 'out' | 'budgets'>, progress: Progress, budgets: readonly Pick<ResolvedBudget, 'name' | 'limit'>[] = []): Promise<MeasuredPair> {
  const { config } = req;
  checkMeasureConfig(config);
  const models = [req.base, req.head].map((p) => ({ path: p, proto: loadModel(p).proto }));
  const withInputs = models.map((m) => ({ path: m.path, inputs: modelInputs(m.proto, m.path) }));
  const data = loadFor(withInputs, req.data, false);
  // both models are read the same way: the same output, judged against the same labels
  const head = judgedHead(models[0].proto, req.base, config, data);
  judgedHead(models[1].proto, req.head, config, data);
  const plans = models.map((m) => batchPlan(m.proto, m.path, config));
  if (plans[0].fixed !== plans[1].fixed) {
    throw new UserError(`${req.head}: accepts batch ${plans[1].fixed ?? 'of any size'} but ${req.base} accepts ${plans[0].fixed ?? 'any'}; compare models exported with the same input batch`);
  }
  const plan = plans[0];
  if (plan.note) progress.note(plan.note);
  const batchSizes = plan.batchSizes;
  const shifts = [...req.shifts.map((s) => ({ name: s.name, data: loadFor(withInputs, s.path, false) })), ...corruptionSets(data, config.corruptions)];
  const provider = await resolveProvider(config.executionProvider, req.base);
  if (provider.note) progress.note(provider.note);
  const opts = { exclude: config.exclude, keepFirstLayer: false, keepLastLayer: false };
  const measureConfig = { ...config, batchSizes, evalBatchSize: plan.evalBatch };
  const ctx = (i: number) => ({ data, shifts, denseWeights: prunableWeights(models[i].proto, opts), config: measureConfig, progress, provider: provider.provider, head });
  const baseStep = await measureStep({ kind: 'base' }, `base model ${path.basename(req.base)}`, req.base, ctx(0));
  const headStep = await measureStep({ kind: 'head' }, `head model ${path.basename(req.head)}`, req.head, { ...ctx(1), dense: baseStep.preds });
  const speed = speedTests(budgets, measureConfig, 'compare');
  // as in `run`: the funnel's rule that the same kernels make no speed claim holds for the headline here too;
  // timed at the batch both models accept
  const samples = await timeSteps([baseStep, headStep], data, measureConfig, provider.provider, progress, speed);
  return { base: baseStep, head: headStep, data, shifts, samples, provider, decisions: speed.decisions(), judged: head, plan };
}

/**
 * `compare`: the same measurements for two given models (no pruning), written as a ledger whose
 * steps are `base` and `head`, with head judged against base on confidence intervals.
 */
export async function comparePipeline(req: CompareRequest, progress: Progress): Promise<RunResult> {
  const { config } = req;
  for (const p of [req.base, req.head]) if (!fs.existsSync(p)) throw new UserError(`${p}: model file not found; check the --base/--head path`);
  refuseInputsInOutput(req.out, [
    { flag: '--base', path: req.base },
    { flag: '--head', path: req.head },
    { flag: '--data', path: req.data },
    ...req.shifts.map((s) => ({ flag: `--shift ${s.name}`, path: s.path })),
  ]);
  // locked and staged like a run: the old ledger stays whole until the new one replaces it in one step
  const out = await openOutput(req.out, config, progress, LEDGER_FILES);
  try {
    const ledger = await compareLedger(req, progress);
    const { markdown } = writeLedgerFiles(out.staging, ledger);
    out.commit();
    return { ledger, markdown, ledgerPath: path.join(req.out, 'ledger.json'), markdownPath: path.join(req.out, 'ledger.md') };
  } finally {
    out.abort(); // no-op after commit
  }
}

async function compareLedger(req: CompareRequest, progress: Progress): Promise<Ledger> {
  const { config } = req;
  const budgets = compareBudgets(req.budgets);
  const m = await measurePair(req, progress, budgets);
  const judged = judgeWithIntervals(budgets, m.base, m.head, m.data, m.shifts, { reference: m.samples[0][0], candidate: m.samples[1][0], decisions: m.decisions }, config, true);
  const model = buildModelLedger({
    model: req.base,
    pruned: req.head,
    method: 'compare',
    targetSparsity: m.head.step.sparsity,
    steps: [m.base, m.head],
    reference: m.base,
    shipped: m.head,
    judged,
    data: { path: req.data, set: m.data },
    head: m.judged,
    plan: m.plan,
    shifts: m.shifts,
    config,
    ...(m.plan.note ? { notes: [m.plan.note] } : {}),
  });
  return ledgerEnvelope([model], measuredRuntime(m.provider, config));
}
