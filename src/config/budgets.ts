import { UserError } from '../errors.js';
import { suggestionTail } from './suggest.js';

/**
 * The budgets a run can be held to: their names, units and what a valid limit looks like. Configuration
 * and flags are parsed against these; judging measured values against them is src/ledger/budgets.ts.
 */

export type Verdict = 'pass' | 'warn' | 'fail';

export type BudgetName =
  | 'accuracy-drop'
  | 'class-accuracy-drop'
  | 'ece-increase'
  | 'min-speedup'
  | 'latency-regression'
  | 'p95-latency-ms'
  | 'max-size-bytes'
  | 'shift-accuracy-drop'
  | 'label-f1-drop';

export type BudgetUnit = 'fraction' | 'ratio' | 'ms' | 'bytes';
/** where a budget's limit came from */
export type BudgetSource = 'default' | 'config' | 'flag';

export interface BudgetSpec {
  /** `max`: actual must stay <= limit; `min`: actual must stay >= limit */
  direction: 'max' | 'min';
  unit: BudgetUnit;
  meaning: string;
  /** checked on every run when set; budgets without a default are only checked when configured */
  default?: number;
  /** valid limits: `min` (exclusive when `minExclusive`) up to `max` inclusive */
  min: number;
  minExclusive: boolean;
  max?: number;
  /** what a valid limit looks like, for error messages: "must be <expect>" */
  expect: string;
}

const FRACTION = { unit: 'fraction', min: 0, minExclusive: false, max: 1 } as const;
const FRACTION_EXPECT = 'a fraction between 0 and 1 like 0.01 or 1%';

/** Every budget prune-guard knows, in the order they are reported. */
export const BUDGETS: Readonly<Record<BudgetName, BudgetSpec>> = {
  'accuracy-drop': {
    ...FRACTION,
    direction: 'max',
    meaning: 'top-1 accuracy lost: dense minus final',
    default: 0.01,
    expect: FRACTION_EXPECT,
  },
  'class-accuracy-drop': {
    ...FRACTION,
    direction: 'max',
    meaning: 'largest accuracy lost by any single class',
    default: 0.05,
    expect: FRACTION_EXPECT,
  },
  'ece-increase': {
    ...FRACTION,
    direction: 'max',
    meaning: 'expected calibration error gained: final minus dense',
    default: 0.02,
    expect: FRACTION_EXPECT,
  },
  'min-speedup': {
    direction: 'min',
    unit: 'ratio',
    meaning: 'dense p50 latency divided by final p50 latency at the primary batch size',
    min: 0,
    minExclusive: true,
    expect: 'a ratio above 0 like 1.5 or 1.5x',
  },
  'latency-regression': {
    direction: 'max',
    unit: 'fraction',
    meaning: 'final p50 latency relative to the base model in compare mode, minus 1',
    min: 0,
    minExclusive: false,
    expect: 'a fraction of 0 or more like 0.1 or 10%',
  },
  'p95-latency-ms': {
    direction: 'max',
    unit: 'ms',
    meaning: 'p95 latency of the final model at the primary batch size, in milliseconds',
    min: 0,
    minExclusive: true,
    expect: 'milliseconds above 0 like 12.5 or 12.5ms',
  },
  'max-size-bytes': {
    direction: 'max',
    unit: 'bytes',
    meaning: 'size of the final model file',
    min: 0,
    minExclusive: true,
    expect: 'a size in bytes above 0 like 2000000, 2MB or 1.5MiB',
  },
  'shift-accuracy-drop': {
    ...FRACTION,
    direction: 'max',
    meaning: 'largest accuracy lost on any distribution-shift set',
    expect: FRACTION_EXPECT,
  },
  'label-f1-drop': {
    ...FRACTION,
    direction: 'max',
    meaning: 'sigmoid outputs: largest F1 lost by any label of a multi-label model (the F1 of the positive decision for a binary one)',
    expect: FRACTION_EXPECT,
  },
};

export const BUDGET_NAMES = Object.keys(BUDGETS) as BudgetName[];

export function isBudgetName(name: string): name is BudgetName {
  return Object.hasOwn(BUDGETS, name);
}

const NUMBER = String.raw`[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?`;
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
};
const SUFFIXES: Record<BudgetUnit, RegExp> = {
  fraction: new RegExp(`^(${NUMBER})\\s*(%?)$`, 'i'),
  ratio: new RegExp(`^(${NUMBER})\\s*(x?)$`, 'i'),
  ms: new RegExp(`^(${NUMBER})\\s*(ms)?$`, 'i'),
  bytes: new RegExp(`^(${NUMBER})\\s*(b|kb|mb|gb|kib|mib|gib)?$`, 'i'),
};

function scale(unit: BudgetUnit, suffix: string | undefined): number {
  if (!suffix) return 1;
  if (unit === 'fraction') return 0.01; // "%"
  if (unit === 'bytes') return SIZE_UNITS[suffix.toLowerCase()];
  return 1; // "x", "ms"
}

/**
 * A budget limit from a number or from text with a unit ("0.5%", "2MB", "1.5MiB", "1.5x", "12ms").
 * Null when the value is not a valid limit for that budget; `BUDGETS[name].expect` says what is.
 */
export function parseBudgetValue(name: BudgetName, raw: string | number): number | null {
  const spec = BUDGETS[name];
  let value: number;
  if (typeof raw === 'number') {
    value = raw;
  } else {
    const match = SUFFIXES[spec.unit].exec(raw.trim());
    if (!match) return null;
    value = Number(match[1]) * scale(spec.unit, match[2]);
    if (spec.unit === 'bytes') value = Math.round(value);
  }
  if (!Number.isFinite(value)) return null;
  if (spec.minExclusive ? value <= spec.min : value < spec.min) return null;
  if (spec.max !== undefined && value > spec.max) return null;
  return value;
}

/** `--budget NAME=VALUE` */
export function parseBudgetFlag(text: string): { name: BudgetName; limit: number } {
  const eq = text.indexOf('=');
  if (eq < 0) {
    throw new UserError(`--budget ${text}: expected NAME=VALUE, e.g. --budget accuracy-drop=0.01`);
  }
  const name = text.slice(0, eq).trim();
  const raw = text.slice(eq + 1).trim();
  if (!isBudgetName(name)) {
    throw new UserError(`--budget ${text}: unknown budget '${name}'${suggestionTail(name, BUDGET_NAMES)}`);
  }
  const limit = parseBudgetValue(name, raw);
  if (limit === null) {
    throw new UserError(`--budget ${text}: '${name}' must be ${BUDGETS[name].expect} (got ${JSON.stringify(raw)})`);
  }
  return { name, limit };
}
