import { BUDGETS, BUDGET_NAMES, type BudgetLimit, type BudgetName, type BudgetSource, type BudgetTask, type Verdict } from '../config/budgets.js';
import type { OutputFidelity } from '../measure/fidelity.js';
import type { Uncertainty } from '../measure/stats/uncertainty.js';
import type { Reduction } from '../prune/reduction.js';
import { describeReduction } from './reduction.js';
import type { BudgetResult, Step } from './types.js';

export interface ResolvedBudget {
  name: BudgetName;
  limit: number;
  direction: 'max' | 'min';
  source: BudgetSource;
  /** as the user wrote it, and where (absent for defaults) */
  written?: string;
  set_at?: string;
  /** budgets judged per output: the output this limit holds (absent: every output) */
  output?: string;
}

/** The config file's limits for one budget: one limit, or a list for budgets judged per output. */
type ConfigLimits = BudgetLimit | readonly BudgetLimit[] | undefined;

/**
 * The budgets to check, in `BUDGETS` order: a flag beats the config file, which beats the default.
 * Later flags for the same name (and output) win. Budgets without a default and not set anywhere are
 * left out. A budget judged per output is resolved for each output named and for "every output" apart:
 * a default holds every output and gives way to a limit set for every output, not to one set for a
 * single output.
 */
export function resolveBudgets(
  configBudgets: Partial<Record<BudgetName, ConfigLimits>>,
  flagBudgets: ReadonlyArray<{ name: BudgetName } & BudgetLimit>,
): ResolvedBudget[] {
  const resolved: ResolvedBudget[] = [];
  const set = (name: BudgetName, source: BudgetSource, b: BudgetLimit): ResolvedBudget => ({
    name,
    limit: b.limit,
    direction: BUDGETS[name].direction,
    source,
    written: b.written,
    ...(b.set_at !== undefined ? { set_at: b.set_at } : {}),
    ...(b.output !== undefined ? { output: b.output } : {}),
  });
  for (const name of BUDGET_NAMES) {
    const { direction, default: fallback } = BUDGETS[name];
    const given = configBudgets[name];
    const fromConfig: readonly BudgetLimit[] = given === undefined ? [] : Array.isArray(given) ? given : [given as BudgetLimit];
    const byOutput = new Map<string | undefined, ResolvedBudget>();
    for (const b of fromConfig) byOutput.set(b.output, set(name, 'config', b));
    for (const f of flagBudgets) if (f.name === name) byOutput.set(f.output, set(name, 'flag', f));
    if (!byOutput.has(undefined) && fallback !== undefined) resolved.push({ name, limit: fallback, direction, source: 'default' });
    // every output first, then each named output in the order first given
    resolved.push(...[...byOutput.entries()].sort(([a], [b]) => Number(a !== undefined) - Number(b !== undefined)).map(([, r]) => r));
  }
  return resolved;
}

export interface BudgetMeasurements {
  dense: Step;
  final: Step;
  /** the model being replaced, in compare mode */
  base?: Step;
  /** what the run's pruning asked for and achieved (runs that prune) */
  reduction?: Reduction;
  /** intervals for budgets whose value is an estimate; a budget without one is judged on its point value */
  uncertainty?: Partial<Record<BudgetName, Uncertainty>>;
  /** what the run measured quality by: class labels (the default) or fidelity to the dense outputs */
  task?: BudgetTask;
}

export interface VerdictOptions {
  /** release gates: an interval that straddles the limit fails instead of warning */
  strict?: boolean;
  /** confidence level of the intervals, recorded in the ledger */
  confidence?: number;
}

/**
 * A measured value with its explanation (and `unmeasured` when only part of it could be measured),
 * or why it could not be measured at all.
 */
type Measured = { actual: number; detail: string; unmeasured?: string } | { actual: null; why: string };

const TOLERANCE = 1e-12;

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
/** Two significant digits below 1 ms (0.021 ms), where two decimals would round a tiny model's latency away. */
const ms = (x: number): string => `${x >= 1 ? x.toFixed(2) : x.toPrecision(2)} ms`;

function notMeasured(why: string): Measured {
  return { actual: null, why };
}

function accuracyDrop({ dense, final }: BudgetMeasurements): Measured {
  if (dense.accuracy == null) return notMeasured('dense accuracy was not evaluated');
  if (final.accuracy == null) return notMeasured('final accuracy was not evaluated');
  return { actual: dense.accuracy - final.accuracy, detail: `${pct(dense.accuracy)} → ${pct(final.accuracy)}` };
}

function classAccuracyDrop({ dense, final }: BudgetMeasurements): Measured {
  if (!dense.per_class?.length) return notMeasured('dense per-class accuracy was not evaluated');
  if (!final.per_class?.length) return notMeasured('final per-class accuracy was not evaluated');
  if (dense.per_class.length !== final.per_class.length) {
    return notMeasured(`dense has ${dense.per_class.length} classes but final has ${final.per_class.length}`);
  }
  let worst = -1;
  let worstDrop = -Infinity;
  dense.per_class.forEach((d, i) => {
    const f = final.per_class![i];
    // a class with no sample has null accuracy: nothing to compare
    if (d == null || f == null) return;
    if (d - f > worstDrop) {
      worst = i;
      worstDrop = d - f;
    }
  });
  if (worst < 0) return notMeasured('no class has accuracy in both dense and final');
  return {
    actual: worstDrop,
    detail: `class ${worst}: ${pct(dense.per_class[worst]!)} → ${pct(final.per_class[worst]!)}`,
  };
}

function eceIncrease({ dense, final }: BudgetMeasurements): Measured {
  if (dense.ece == null) return notMeasured('dense ECE was not evaluated');
  if (final.ece == null) return notMeasured('final ECE was not evaluated');
  return { actual: final.ece - dense.ece, detail: `ECE ${pct(dense.ece)} → ${pct(final.ece)}` };
}

function latencyRatio(from: Step, fromLabel: string, final: Step): Measured {
  if (!from.latency) return notMeasured(`${fromLabel} latency was not measured`);
  if (!final.latency) return notMeasured('final latency was not measured');
  if (from.latency.batch !== final.latency.batch) {
    return notMeasured(`${fromLabel} latency is at batch ${from.latency.batch} but final at batch ${final.latency.batch}`);
  }
  return {
    actual: from.latency.p50_ms / final.latency.p50_ms,
    detail: `p50 ${ms(from.latency.p50_ms)} → ${ms(final.latency.p50_ms)} at batch ${final.latency.batch}`,
  };
}

function minSpeedup({ dense, final }: BudgetMeasurements): Measured {
  return latencyRatio(dense, 'dense', final);
}

function latencyRegression({ base, final }: BudgetMeasurements): Measured {
  if (!base) return notMeasured('no base model to compare against (compare mode only)');
  const ratio = latencyRatio(base, 'base', final);
  if (ratio.actual === null) return ratio;
  return { actual: 1 / ratio.actual - 1, detail: ratio.detail };
}

function p95LatencyMs({ final }: BudgetMeasurements): Measured {
  if (!final.latency) return notMeasured('final latency was not measured');
  return { actual: final.latency.p95_ms, detail: `batch ${final.latency.batch}, ${final.latency.runs} runs` };
}

function maxSizeBytes({ final }: BudgetMeasurements): Measured {
  return { actual: final.size_bytes, detail: final.artifact };
}

function shiftAccuracyDrop({ dense, final }: BudgetMeasurements): Measured {
  const shared = Object.keys(dense.shift_accuracy ?? {}).filter((k) => final.shift_accuracy?.[k] != null);
  if (shared.length === 0) return notMeasured('no shift set was evaluated on both dense and final');
  let worst = shared[0];
  for (const k of shared) {
    if (dense.shift_accuracy![k] - final.shift_accuracy![k] > dense.shift_accuracy![worst] - final.shift_accuracy![worst]) {
      worst = k;
    }
  }
  const d = dense.shift_accuracy![worst];
  const f = final.shift_accuracy![worst];
  const missing = Object.keys(dense.shift_accuracy!).filter((k) => !shared.includes(k));
  return {
    actual: d - f,
    detail: `${worst}: ${pct(d)} → ${pct(f)}`,
    unmeasured: missing.length ? `final was not evaluated on ${missing.join(', ')}` : undefined,
  };
}

function labelF1Drop({ dense, final }: BudgetMeasurements): Measured {
  const d = dense.per_label_f1 ?? (dense.f1 !== undefined ? [dense.f1] : undefined);
  const f = final.per_label_f1 ?? (final.f1 !== undefined ? [final.f1] : undefined);
  if (!d || !f) return notMeasured('F1 is measured for sigmoid outputs (binary or multi-label) only');
  let worst = -1;
  let worstDrop = -Infinity;
  d.forEach((x, k) => {
    const y = f[k];
    if (x == null || y == null) return;
    if (x - y > worstDrop) {
      worst = k;
      worstDrop = x - y;
    }
  });
  if (worst < 0) return notMeasured('no label has an F1 in both dense and final (no positive label or prediction)');
  return { actual: worstDrop, detail: `${d.length > 1 ? `label ${worst}` : 'F1'}: ${pct(d[worst]!)} → ${pct(f[worst]!)}` };
}

function targetReduction({ reduction }: BudgetMeasurements): Measured {
  if (!reduction) return notMeasured('no pruning step records what was requested');
  return { actual: reduction.met, detail: describeReduction(reduction) };
}

const fixed4 = (x: number): string => x.toFixed(4);

function describeFidelity(f: OutputFidelity): string {
  const agreement = f.top1_agreement === undefined ? '' : `, top-1 agreement ${pct(f.top1_agreement)}`;
  return `cosine ${fixed4(f.cosine)}, relative L2 error ${pct(f.rel_l2)}, max |Δ| ${f.max_abs.toPrecision(3)}${agreement}`;
}

/**
 * A fidelity budget: the named output's value, or without a name the worst output's (a value that is not
 * a number, from NaN outputs, counts as the worst).
 */
function outputMeasure(key: 'cosine' | 'rel_l2', worse: (a: number, b: number) => boolean) {
  return ({ final }: BudgetMeasurements, output?: string): Measured => {
    const outputs = final.fidelity;
    if (!outputs?.length) return notMeasured('fidelity to the dense outputs was not measured');
    if (output !== undefined) {
      const f = outputs.find((o) => o.output === output);
      if (!f) return notMeasured(`the model has no output '${output}' (its outputs: ${outputs.map((o) => o.output).join(', ')})`);
      return { actual: f[key], detail: describeFidelity(f) };
    }
    const worst = outputs.reduce((a, b) => (Number.isNaN(b[key]) || (!Number.isNaN(a[key]) && worse(b[key], a[key])) ? b : a));
    const which = outputs.length > 1 ? `${worst.output} (worst of ${outputs.length} outputs): ` : '';
    return { actual: worst[key], detail: which + describeFidelity(worst) };
  };
}

const MEASURE: Record<BudgetName, (m: BudgetMeasurements, output?: string) => Measured> = {
  'accuracy-drop': accuracyDrop,
  'class-accuracy-drop': classAccuracyDrop,
  'ece-increase': eceIncrease,
  'min-speedup': minSpeedup,
  'latency-regression': latencyRegression,
  'p95-latency-ms': p95LatencyMs,
  'max-size-bytes': maxSizeBytes,
  'shift-accuracy-drop': shiftAccuracyDrop,
  'label-f1-drop': labelF1Drop,
  'target-reduction': targetReduction,
  'min-output-cosine': outputMeasure('cosine', (a, b) => a < b),
  'max-output-rel-error': outputMeasure('rel_l2', (a, b) => a > b),
};

/** Why a budget set for the other task cannot be measured in this run. */
const OTHER_TASK: Record<BudgetTask, string> = {
  classification: 'the run judged fidelity to the dense outputs, not class labels (set task: classification to judge labels)',
  fidelity: 'fidelity budgets are judged when the run compares outputs with the dense model (task: fidelity)',
};

/**
 * The budgets that concern this run's task. Defaults of the other task are left out (a classifier is not
 * held to an output-cosine floor it never asked for, nor a detector to accuracy); a limit the user set for
 * the other task stays, to be reported as not measured.
 */
function forTask(budgets: readonly ResolvedBudget[], task: BudgetTask): ResolvedBudget[] {
  return budgets.filter((b) => BUDGETS[b.name].task === undefined || BUDGETS[b.name].task === task || b.source !== 'default');
}

function within(direction: 'max' | 'min', actual: number, limit: number): boolean {
  return direction === 'max' ? actual <= limit + TOLERANCE : actual >= limit - TOLERANCE;
}

/**
 * The verdict of an interval against a limit: `fail` only when the whole interval is beyond the limit
 * (the breach is real at this confidence), `warn` when it straddles the limit (cannot tell; `fail` in
 * strict mode), `pass` when the whole interval is within.
 */
export function intervalVerdict(direction: 'max' | 'min', ci: readonly [number, number], limit: number, strict = false): Verdict {
  const [lo, hi] = ci;
  const inside = direction === 'max' ? hi <= limit + TOLERANCE : lo >= limit - TOLERANCE;
  const beyond = direction === 'max' ? lo > limit + TOLERANCE : hi < limit - TOLERANCE;
  if (beyond) return 'fail';
  if (inside) return 'pass';
  return strict ? 'fail' : 'warn';
}

const STRADDLE = 'interval straddles the limit';

/** Checks each budget against the measured steps. Anything not measured is a `warn`, never a silent pass. */
export function evaluateBudgets(budgets: readonly ResolvedBudget[], m: BudgetMeasurements, opts: VerdictOptions = {}): BudgetResult[] {
  const task = m.task ?? 'classification';
  return forTask(budgets, task).map(({ name, limit, direction, source, written, set_at, output }): BudgetResult => {
    const own = BUDGETS[name].task;
    const measured = own !== undefined && own !== task ? notMeasured(OTHER_TASK[own]) : MEASURE[name](m, output);
    const base = {
      name,
      limit,
      direction,
      source,
      ...(written !== undefined ? { written } : {}),
      ...(set_at !== undefined ? { set_at } : {}),
      ...(output !== undefined ? { output } : {}),
    };
    const u = m.uncertainty?.[name];
    if (measured.actual !== null && Number.isFinite(measured.actual) && u && u.ci.every(Number.isFinite)) {
      const stats = {
        ci: u.ci,
        ...(opts.confidence !== undefined ? { confidence: opts.confidence } : {}),
        ...(u.p_value !== undefined ? { p_value: u.p_value } : {}),
        ...(u.sequential !== undefined ? { sequential: u.sequential } : {}),
      };
      let verdict = intervalVerdict(direction, u.ci, limit, opts.strict);
      const notes = [measured.detail];
      if (u.note) notes.push(u.note);
      // a sequential decision's note already says why it could not decide
      if (verdict !== 'pass' && !(u.sequential && !opts.strict) && intervalVerdict(direction, u.ci, limit, false) === 'warn') notes.push(opts.strict ? `${STRADDLE} (strict mode fails it)` : STRADDLE);
      if (measured.unmeasured) {
        notes.push(`not measured: ${measured.unmeasured}`);
        if (verdict === 'pass') verdict = 'warn';
      }
      return { ...base, actual: u.estimate ?? measured.actual, verdict, detail: notes.join('; '), ...stats };
    }
    if (measured.actual === null) {
      return { ...base, actual: null, verdict: 'warn', detail: `not measured: ${measured.why}` };
    }
    if (!Number.isFinite(measured.actual)) {
      return { ...base, actual: null, verdict: 'warn', detail: `not measured: came out as ${measured.actual} (${measured.detail})` };
    }
    if (!within(direction, measured.actual, limit)) {
      // a shortfall that still did part of the work warns where the budget says so; nothing done fails
      const partial = BUDGETS[name].breach === 'warn' && measured.actual > TOLERANCE && !opts.strict;
      return { ...base, actual: measured.actual, verdict: partial ? 'warn' : 'fail', detail: measured.detail };
    }
    if (measured.unmeasured) {
      // a partial measurement that passes is still not a pass
      return { ...base, actual: measured.actual, verdict: 'warn', detail: `${measured.detail}; not measured: ${measured.unmeasured}` };
    }
    return { ...base, actual: measured.actual, verdict: 'pass', detail: measured.detail };
  });
}

const SEVERITY: Record<Verdict, number> = { pass: 0, warn: 1, fail: 2 };

/** The worst verdict: fail > warn > pass; nothing to judge is a pass. */
export function overallVerdict(results: readonly Verdict[]): Verdict {
  return results.reduce<Verdict>((worst, v) => (SEVERITY[v] > SEVERITY[worst] ? v : worst), 'pass');
}
