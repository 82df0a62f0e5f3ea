import { BUDGETS, BUDGET_NAMES, type BudgetLimit, type BudgetName, type BudgetSource, type Verdict } from '../config/budgets.js';
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
}

/**
 * The budgets to check, in `BUDGETS` order: a flag beats the config file, which beats the default.
 * Later flags for the same name win. Budgets without a default and not set anywhere are left out.
 */
export function resolveBudgets(
  configBudgets: Partial<Record<BudgetName, BudgetLimit>>,
  flagBudgets: ReadonlyArray<{ name: BudgetName } & BudgetLimit>,
): ResolvedBudget[] {
  const flags = new Map(flagBudgets.map((f) => [f.name, f] as const));
  const resolved: ResolvedBudget[] = [];
  const set = (name: BudgetName, source: BudgetSource, b: BudgetLimit): ResolvedBudget => ({
    name,
    limit: b.limit,
    direction: BUDGETS[name].direction,
    source,
    written: b.written,
    ...(b.set_at !== undefined ? { set_at: b.set_at } : {}),
  });
  for (const name of BUDGET_NAMES) {
    const { direction, default: fallback } = BUDGETS[name];
    const fromFlag = flags.get(name);
    const fromConfig = configBudgets[name];
    if (fromFlag !== undefined) resolved.push(set(name, 'flag', fromFlag));
    else if (fromConfig !== undefined) resolved.push(set(name, 'config', fromConfig));
    else if (fallback !== undefined) resolved.push({ name, limit: fallback, direction, source: 'default' });
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

function targetReduction({ reduction }: BudgetMeasurements): Measured {
  if (!reduction) return notMeasured('no pruning step records what was requested');
  return { actual: reduction.met, detail: describeReduction(reduction) };
}

const MEASURE: Record<BudgetName, (m: BudgetMeasurements) => Measured> = {
  'accuracy-drop': accuracyDrop,
  'class-accuracy-drop': classAccuracyDrop,
  'ece-increase': eceIncrease,
  'min-speedup': minSpeedup,
  'latency-regression': latencyRegression,
  'p95-latency-ms': p95LatencyMs,
  'max-size-bytes': maxSizeBytes,
  'shift-accuracy-drop': shiftAccuracyDrop,
  'target-reduction': targetReduction,
};

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
  return budgets.map(({ name, limit, direction, source, written, set_at }): BudgetResult => {
    const measured = MEASURE[name](m);
    const base = { name, limit, direction, source, ...(written !== undefined ? { written } : {}), ...(set_at !== undefined ? { set_at } : {}) };
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
