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
  | 'target-reduction';

/**
 * `points`: a difference of two accuracies (or calibration errors), held as a fraction (0.005) and written
 * with a unit (`0.5pt` or `0.5%`), where a bare number that large would be misread; `fraction`: a relative
 * change (`0.1` or `10%`); `ratio`: `1.5` or `1.5x`; `ms`; `bytes`.
 */
export type BudgetUnit = 'points' | 'fraction' | 'ratio' | 'ms' | 'bytes';
/** where a budget's limit came from */
export type BudgetSource = 'default' | 'config' | 'flag';

/** A limit the user set: the parsed value with the text as written, for reports in the user's units. */
export interface BudgetLimit {
  limit: number;
  /** as written: `0.5pt`, `2MB`, `1.3x`; a bare number as given */
  written: string;
  /** `FILE:LINE`, `--budget` or `action input budgets` */
  set_at?: string;
}

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
  /** what a value beyond the limit gives: `fail` (default), or `warn` for a shortfall that still did part of the work */
  breach?: 'warn';
  /** what a valid limit looks like, for error messages: "must be <expect>" */
  expect: string;
}

const POINTS = { unit: 'points', min: 0, minExclusive: false, max: 1 } as const;
const POINTS_EXPECT = 'points from 0 to 100 like 0.5pt or 1%, or a fraction below 0.1 like 0.01';

/** A bare number for a points budget at or above this (10 points) is refused: 0.5 reads as half a point but means 50. */
export const BARE_POINTS_LIMIT = 0.1;

/** Every budget prune-guard knows, in the order they are reported. */
export const BUDGETS: Readonly<Record<BudgetName, BudgetSpec>> = {
  'accuracy-drop': {
    ...POINTS,
    direction: 'max',
    meaning: 'top-1 accuracy lost: dense minus final',
    default: 0.01,
    expect: POINTS_EXPECT,
  },
  'class-accuracy-drop': {
    ...POINTS,
    direction: 'max',
    meaning: 'largest accuracy lost by any single class',
    default: 0.05,
    expect: POINTS_EXPECT,
  },
  'ece-increase': {
    ...POINTS,
    direction: 'max',
    meaning: 'expected calibration error gained: final minus dense',
    default: 0.02,
    expect: POINTS_EXPECT,
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
    ...POINTS,
    direction: 'max',
    meaning: 'largest accuracy lost on any distribution-shift set',
    expect: POINTS_EXPECT,
  },
  'target-reduction': {
    unit: 'fraction',
    min: 0,
    minExclusive: false,
    max: 1,
    direction: 'min',
    meaning: 'share of the requested reduction (of prunable weights, or of channels for structured) the pruning achieved; below the limit warns, nothing pruned fails',
    default: 0.75,
    breach: 'warn',
    expect: 'a fraction from 0 to 1 like 0.75 or 75%',
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
/** the units each kind of budget may be written with (case-insensitive); none means a bare number */
const UNITS: Record<BudgetUnit, readonly string[]> = {
  points: ['pt', '%'],
  fraction: ['%'],
  ratio: ['x'],
  ms: ['ms'],
  bytes: Object.keys(SIZE_UNITS),
};

/** `(pt|%)` with each letter in either case, so the same pattern serves JSON Schema (no flags there) */
function unitPattern(unit: BudgetUnit): string {
  const anyCase = (u: string) => [...u].map((c) => (/[a-z]/.test(c) ? `[${c}${c.toUpperCase()}]` : c)).join('');
  return `(${UNITS[unit].map(anyCase).join('|')})`;
}

/** A limit written as text: a number and, optionally, one of its budget's units. */
export function budgetTextPattern(unit: BudgetUnit): string {
  return `^\\s*(${NUMBER.replace('e[+-]', '[eE][+-]')})\\s*${unitPattern(unit)}?\\s*$`;
}

function scale(unit: BudgetUnit, suffix: string): number {
  if (unit === 'points' || unit === 'fraction') return 0.01; // "pt", "%"
  if (unit === 'bytes') return SIZE_UNITS[suffix.toLowerCase()];
  return 1; // "x", "ms"
}

/** The number without float noise, as a person would write it: 50, not 50.00000000000001. */
const tidy = (x: number): string => String(Number(x.toPrecision(12)));

function pointsPhrase(points: number): string {
  if (points === 0.5) return 'half a point';
  return `${tidy(points)} point${points === 1 ? '' : 's'}`;
}

/** A limit read from what the user wrote, or why it cannot be one: `message` is a sentence, else `expect` applies. */
export type BudgetReading = { ok: true; limit: number; written: string } | { ok: false; message?: string };

/**
 * A budget limit from a number or from text with a unit ("0.5pt", "0.5%", "2MB", "1.5MiB", "1.5x", "12ms").
 * A bare number for a points budget that would mean 10 points or more is refused with both readings:
 * `accuracy-drop: 0.5` is 50 points as a fraction, not half a point.
 */
export function readBudget(name: BudgetName, raw: string | number): BudgetReading {
  const spec = BUDGETS[name];
  let value: number;
  let bare: boolean;
  if (typeof raw === 'number') {
    value = raw;
    bare = true;
  } else {
    const match = new RegExp(budgetTextPattern(spec.unit)).exec(raw);
    if (!match) return { ok: false };
    bare = match[2] === undefined;
    value = Number(match[1]) * (bare ? 1 : scale(spec.unit, match[2]));
    if (spec.unit === 'bytes') value = Math.round(value);
  }
  if (!Number.isFinite(value)) return { ok: false };
  if (spec.minExclusive ? value <= spec.min : value < spec.min) return { ok: false };
  if (bare && spec.unit === 'points' && value >= BARE_POINTS_LIMIT) {
    const written = typeof raw === 'number' ? tidy(raw) : raw.trim();
    const points = value * 100;
    const instead = points <= 100 ? ` or ${tidy(points)}pt if you mean it` : '';
    return { ok: false, message: `${written} would mean ${tidy(points)} points (a fraction); write ${written}pt for ${pointsPhrase(value)}${instead}` };
  }
  if (spec.max !== undefined && value > spec.max) return { ok: false };
  return { ok: true, limit: value, written: typeof raw === 'number' ? String(raw) : raw.trim() };
}

/** JSON Schema of a limit: a bare number within the budget's range, or text with one of its units. */
export function budgetJsonSchema(name: BudgetName): Record<string, unknown> {
  const spec = BUDGETS[name];
  const bare: Record<string, unknown> = { type: 'number', [spec.minExclusive ? 'exclusiveMinimum' : 'minimum']: spec.min };
  if (spec.unit === 'points') bare.exclusiveMaximum = BARE_POINTS_LIMIT;
  else if (spec.max !== undefined) bare.maximum = spec.max;
  return { anyOf: [bare, { type: 'string', pattern: budgetTextPattern(spec.unit) }] };
}

/** `--budget NAME=VALUE` (or one line of the action's `budgets` input: `setAt` says which). */
export function parseBudgetFlag(text: string, setAt = '--budget'): { name: BudgetName } & BudgetLimit {
  const eq = text.indexOf('=');
  if (eq < 0) {
    throw new UserError(`--budget ${text}: expected NAME=VALUE, e.g. --budget accuracy-drop=0.5pt`);
  }
  const name = text.slice(0, eq).trim();
  const raw = text.slice(eq + 1).trim();
  if (!isBudgetName(name)) {
    throw new UserError(`--budget ${text}: unknown budget '${name}'${suggestionTail(name, BUDGET_NAMES)}`);
  }
  const reading = readBudget(name, raw);
  if (!reading.ok) {
    throw new UserError(`--budget ${text}: ${reading.message ?? `'${name}' must be ${BUDGETS[name].expect} (got ${JSON.stringify(raw)})`}`);
  }
  return { name, limit: reading.limit, written: reading.written, set_at: setAt };
}
