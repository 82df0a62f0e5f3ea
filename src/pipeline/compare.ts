import * as fs from 'node:fs';
import { refuseInputsInOutput } from '../io/inputPaths.js';
import * as path from 'node:path';
import { checkMeasureConfig } from '../config/rules.js';
import type { Config } from '../config/schema.js';
import { loadDataset, sliceBatch, type Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { type ResolvedBudget } from '../ledger/budgets.js';
import { BUDGETS, BUDGET_NAMES } from '../config/budgets.js';
import { ledgerEnvelope } from '../ledger/envelope.js';
import { latencyStat, measureInterleaved } from '../measure/latency.js';
import { resolveProvider, type ResolvedProvider } from '../measure/provider.js';
import { measureRuntimeCost } from '../measure/runtimeCost.js';
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
  // nothing is pruned in a comparison: no requested reduction to fall short of
  const all = budgets.filter((b) => b.name !== 'target-reduction');
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
  provider: ResolvedProvider;
}

/** Evaluate both models on the same data and time them interleaved; shared by compare and selftest. */
export async function measurePair(req: Omit<CompareRequest, 'out' | 'budgets'>, progress: Progress): Promise<MeasuredPair> {
  const { config } = req;
  checkMeasureConfig(config);
  const models = [req.base, req.head].map((p) => ({ path: p, proto: loadModel(p).proto }));
  const withInputs = models.map((m) => ({ path: m.path, inputs: modelInputs(m.proto, m.path) }));
  const data = loadFor(withInputs, req.data, true);
  const shifts = [...req.shifts.map((s) => ({ name: s.name, data: loadFor(withInputs, s.path, false) })), ...corruptionSets(data, config.corruptions)];
  const provider = await resolveProvider(config.executionProvider, req.base);
  if (provider.note) progress.note(provider.note);
  const opts = { exclude: config.exclude, keepFirstLayer: false, keepLastLayer: false };
  const ctx = (i: number) => ({ data, shifts, denseWeights: prunableWeights(models[i].proto, opts), config, progress, provider: provider.provider });
  const base = await measureStep({ kind: 'base' }, `base model ${path.basename(req.base)}`, req.base, ctx(0));
  const head = await measureStep({ kind: 'head' }, `head model ${path.basename(req.head)}`, req.head, { ...ctx(1), dense: base.preds });
  progress.stage({ kind: 'latency', detail: 'base and head interleaved', total: config.batchSizes.length * (config.latency.warmup + config.latency.runs) });
  const source = sliceBatch(data, 0, Math.min(data.count, Math.max(...config.batchSizes)));
  const samples = await measureInterleaved([req.base, req.head], source, { ...config.latency, batchSizes: config.batchSizes, confidence: config.confidence, provider: provider.provider }, (done) => progress.update(done));
  progress.stop();
  [base, head].forEach((m, i) => {
    m.step.latency_by_batch = config.batchSizes.map((b, j) => latencyStat(b, samples[i][j], config.confidence));
    m.step.latency = m.step.latency_by_batch[0];
  });
  for (const m of [base, head]) m.step.runtime_cost = await measureRuntimeCost(m.step.artifact, m.step.latency_by_batch, source, { threads: config.latency.threads, provider: provider.provider });
  return { base, head, data, shifts, samples, provider };
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
  const m = await measurePair(req, progress);
  const judged = judgeWithIntervals(compareBudgets(req.budgets), m.base, m.head, m.data, m.shifts, { reference: m.samples[0][0], candidate: m.samples[1][0] }, config, true);
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
    shifts: m.shifts,
    config,
  });
  return ledgerEnvelope([model], measuredRuntime(m.provider, config));
}
