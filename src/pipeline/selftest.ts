import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { quantileSorted } from 'simple-statistics';
import type { Config } from '../config/schema.js';
import { sliceBatch } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { refuseInputsInOutput } from '../io/inputPaths.js';
import type { ResolvedBudget } from '../ledger/budgets.js';
import { measureInterleaved, pairedMedianRatio } from '../measure/latency.js';
import { compareBudgets, measurePair } from './compare.js';
import { openOutput } from './guardedRun.js';
import { speedTests } from './speedDecisions.js';
import type { Progress } from '../io/progress.js';
import { judgeWithIntervals } from './verdicts.js';

export interface SelftestRequest {
  model?: string;
  data?: string;
  repetitions: number;
  config: Config;
  budgets: ResolvedBudget[];
  out?: string;
}

export interface SelftestReport {
  model: string;
  data: string;
  repetitions: number;
  confidence: number;
  batch: number;
  /** A/A repetitions in which some budget failed: every one is a false alarm */
  false_alarms: number;
  false_alarm_rate: number;
  /** repetitions with a warn (interval straddling a limit) */
  warns: number;
  /** relative half-width of the latency-regression interval: median and worst over repetitions */
  latency_ci_half_width: { median: number; max: number };
  /** smallest slowdown distinguishable from no change with ~97.5% power: 2 × median half-width */
  min_detectable_change: number;
  latency_regression_limit: number;
  /** slowdowns from this size fail the latency-regression budget ~97.5% of the time: limit + 2 × half-width */
  reliably_failed_slowdown: number;
  failures: string[];
}

/** The bundled fixture (mlp.onnx on Fashion-MNIST), found beside the source or the built bundle. */
function defaultFixture(name: string): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, 'fixtures', name);
    if (fs.existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  return undefined;
}

/** The file `selftest --out DIR` publishes. */
export const SELFTEST_FILE = 'selftest.json';

/**
 * A/A test of this runner: one model against itself K times. Every failure is a false alarm by
 * construction, and the spread of the latency interval says how small a change this runner can see.
 * With `out`, the report is published like a run's ledger: locked, staged, and swapped in whole.
 */
export async function selftest(req: SelftestRequest, progress: Progress): Promise<SelftestReport> {
  const model = req.model ?? defaultFixture('mlp.onnx');
  const data = req.data ?? defaultFixture('fmnist-test.npz');
  if (!model || !data) throw new UserError('selftest: the bundled fixtures are not installed here; pass --model M.onnx --data D.npz');
  if (!req.out) return measureSelftest(req, model, data, progress);
  refuseInputsInOutput(req.out, [
    { flag: '--model', path: model },
    { flag: '--data', path: data },
  ]);
  const out = await openOutput(req.out, req.config, progress, [SELFTEST_FILE]);
  try {
    const report = await measureSelftest(req, model, data, progress);
    writeFileAtomic(path.join(out.staging, SELFTEST_FILE), JSON.stringify(report, null, 2) + '\n');
    out.commit();
    return report;
  } finally {
    out.abort(); // no-op after commit
  }
}

async function measureSelftest(req: SelftestRequest, model: string, data: string, progress: Progress): Promise<SelftestReport> {
  const { config } = req;
  const budgets = compareBudgets(req.budgets);
  const limit = budgets.find((b) => b.name === 'latency-regression')!.limit;
  const first = await measurePair({ base: model, head: model, data, shifts: [], config }, progress, budgets);
  // a model whose batch is fixed is timed at that batch, as measurePair did
  const batchSizes = first.plan.batchSizes;
  const source = sliceBatch(first.data, 0, Math.min(first.data.count, Math.max(...batchSizes)));
  const halfWidths: number[] = [];
  const failures: string[] = [];
  let falseAlarms = 0;
  let warns = 0;
  for (let k = 0; k < req.repetitions; k++) {
    // predictions are deterministic, so only latency is measured again in each repetition
    const speed = speedTests(budgets, config, 'compare');
    const samples = k === 0 ? first.samples : await measureInterleaved([model, model], source, { ...config.latency, batchSizes: batchSizes.slice(0, 1), confidence: config.confidence, provider: first.provider.provider, sequential: speed.tests });
    const decisions = k === 0 ? first.decisions : speed.decisions();
    progress.note(`A/A repetition ${k + 1}/${req.repetitions}`);
    const latency = { reference: samples[0][0], candidate: samples[1][0], decisions };
    // the runner's resolution over all rounds taken, at the plain (single-look) confidence
    const r = pairedMedianRatio(latency.candidate, latency.reference, config.confidence);
    halfWidths.push((r.ci[1] - r.ci[0]) / 2);
    first.head.step.latency = { ...first.head.step.latency!, p50_ms: quantileSorted([...latency.candidate].sort((a, b) => a - b), 0.5) };
    first.base.step.latency = { ...first.base.step.latency!, p50_ms: quantileSorted([...latency.reference].sort((a, b) => a - b), 0.5) };
    const judged = judgeWithIntervals(budgets, first.base, first.head, first.data, [], latency, config, true);
    if (judged.verdict === 'fail') {
      falseAlarms++;
      failures.push(`repetition ${k + 1}: ${judged.budgets.filter((b) => b.verdict === 'fail').map((b) => `${b.name} ${b.detail}`).join('; ')}`);
    } else if (judged.verdict === 'warn') warns++;
  }
  const sorted = [...halfWidths].sort((a, b) => a - b);
  const median = quantileSorted(sorted, 0.5);
  const report: SelftestReport = {
    model,
    data,
    repetitions: req.repetitions,
    confidence: config.confidence,
    batch: batchSizes[0],
    false_alarms: falseAlarms,
    false_alarm_rate: falseAlarms / req.repetitions,
    warns,
    latency_ci_half_width: { median, max: sorted[sorted.length - 1] },
    min_detectable_change: 2 * median,
    latency_regression_limit: limit,
    reliably_failed_slowdown: limit + 2 * median,
    failures,
  };
  return report;
}

export function renderSelftest(r: SelftestReport): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return [
    `### prune-guard selftest (A/A): ${r.false_alarms} false alarm${r.false_alarms === 1 ? '' : 's'} in ${r.repetitions} repetitions`,
    '',
    `- model \`${r.model}\` against itself on \`${r.data}\`, batch ${r.batch}, ${pct(r.confidence)} intervals`,
    `- false-alarm rate: ${pct(r.false_alarm_rate)} (${r.warns} repetitions warned: an interval straddled a limit)`,
    `- latency interval half-width: median ±${pct(r.latency_ci_half_width.median)}, worst ±${pct(r.latency_ci_half_width.max)}`,
    `- smallest latency change this runner can detect: about ${pct(r.min_detectable_change)}`,
    `- with latency-regression ≤ ${pct(r.latency_regression_limit)}, slowdowns of ${pct(r.reliably_failed_slowdown)} or more fail reliably; set budgets no tighter than the detectable change`,
    ...r.failures.map((f) => `- ❌ ${f}`),
    '',
  ].join('\n');
}
