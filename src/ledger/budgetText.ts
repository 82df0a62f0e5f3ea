import { BUDGETS } from '../config/budgets.js';
import { ms, percent, points, pValue, ratio, sizeIn, sizeLike, sizeUnit, trimmed } from './format.js';
import { withoutAbsolutePaths } from './markdown.js';
import type { BudgetResult, Verdict } from './types.js';

/**
 * One budget result in words and numbers, the same everywhere it appears (ledger file, comment, check
 * run, annotation, commit status): the limit in the unit the user wrote it in, the measured value and
 * its interval in that unit, the margin, and why a warning is a warning.
 */

export const ICON: Record<Verdict, string> = { pass: '✅', warn: '⚠️', fail: '❌' };
export const WORD: Record<Verdict, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' };

/** What a budget result compares: the pruning of one model, or a pull request's head against its base. */
export type Compared = 'dense → pruned' | 'base → head';

/** How values of this budget read: accuracy-like fractions in points, sizes in the limit's own unit. */
function valueIn(b: BudgetResult): (x: number) => string {
  switch (BUDGETS[b.name].unit) {
    case 'points':
      return (x) => points(x);
    case 'fraction':
      // a relative change is signed ("+3.1%" is slower, "−2.0%" faster); a share achieved is not
      if (b.name !== 'latency-regression') return (x) => percent(x);
      return (x) => (x > 0 && percent(x) !== percent(0) ? '+' : '') + percent(x);
    case 'ratio':
      return (x) => ratio(x);
    case 'ms':
      return (x) => ms(x);
    case 'bytes': {
      const unit = sizeUnit(b.limit);
      return (x) => sizeLike(x, unit);
    }
  }
}

/** The limit in the budget's natural unit, as a user would write it: "1 pt", "5%", "1.5x", "12.5 ms", "2 MB". */
export function naturalLimit(b: BudgetResult): string {
  switch (BUDGETS[b.name].unit) {
    case 'points':
      return `${trimmed(b.limit * 100)} pt`;
    case 'fraction':
      return `${trimmed(b.limit * 100)}%`;
    case 'ratio':
      return `${trimmed(b.limit)}x`;
    case 'ms':
      return `${trimmed(b.limit)} ms`;
    case 'bytes':
      return sizeIn(b.limit, sizeUnit(b.limit), true);
  }
}

/** "≤ 0.5pt" as the user wrote it when the ledger records that, else "≤ 0.5 pt". */
export function limitText(b: BudgetResult): string {
  const op = b.direction === 'max' ? '≤' : '≥';
  // a bare number would hide its unit (0.01 of what?): only a written form with a unit is shown as written
  const written = b.written?.trim();
  return `${op} ${written && /[a-z%]/i.test(written) ? written : naturalLimit(b)}`;
}

/** The measured value in the limit's unit; null when it was not measured. */
export function valueText(b: BudgetResult): string | null {
  return b.actual === null ? null : valueIn(b)(b.actual);
}

/** "[7.10 pt, 9.80 pt] 95%", or '' without an interval. */
export function intervalText(b: BudgetResult): string {
  if (!b.ci) return '';
  const show = valueIn(b);
  const level = b.confidence === undefined ? '' : ` ${trimmed(b.confidence * 100, 1)}%`;
  return `[${show(b.ci[0])}, ${show(b.ci[1])}]${level}`;
}

/** How far the value is from the limit: "1.20 pt over", "0.51x short", "0.40 pt to spare". */
export function marginText(b: BudgetResult): string | null {
  if (b.actual === null) return null;
  const beyond = b.direction === 'max' ? b.actual - b.limit : b.limit - b.actual;
  const size = Math.abs(beyond);
  // a margin between two percentages is in points, with the value's own decimals
  const text = BUDGETS[b.name].unit === 'fraction' ? points(size, 1) : valueIn(b)(size);
  if (beyond <= 0) return `${text} to spare`;
  return `${text} ${b.direction === 'max' ? 'over' : 'short'}`;
}

/** Whether the verdict is a warning because the interval reaches across the limit. */
export function straddles(b: BudgetResult): boolean {
  if (!b.ci || b.actual === null) return false;
  const [lo, hi] = b.ci;
  return lo <= b.limit && b.limit <= hi;
}

const STRADDLE = /^interval straddles the limit/;

/** Why a verdict that is not a pass could not be called: "its 95% interval [1.4 pt, 4.1 pt] reaches across the limit". */
export function closeCall(b: BudgetResult, withInterval = true): string {
  const strict = b.verdict === 'fail' ? ' (strict mode fails it)' : '';
  return `${withInterval ? `its interval ${intervalText(b)}` : 'the interval'} reaches across the limit: too close to call${strict}`;
}

/**
 * Why the verdict is what it is, for a reader: the measured change (dense → pruned accuracy, the class
 * that dropped most), the p-value, and for a warning what kept it from passing or failing.
 * `interval: false` where the interval is already shown beside it.
 */
export function whyText(b: BudgetResult, opts: { interval?: boolean; closeCall?: boolean } = {}): string {
  const parts = withoutAbsolutePaths(b.detail)
    .split('; ')
    .filter((p) => p && !STRADDLE.test(p))
    // the size budget's detail is the file it measured: the ledger names that file already
    .filter((p) => b.name !== 'max-size-bytes' || !/\.onnx$/.test(p));
  // a sequential latency decision's own detail says it could not decide, with the runner's noise
  const undecided = b.sequential?.outcome === 'undecided' && b.verdict === 'warn';
  if (b.verdict !== 'pass' && straddles(b) && opts.closeCall !== false && !undecided) parts.unshift(closeCall(b, opts.interval !== false));
  if (b.p_value !== undefined) parts.push(pValue(b.p_value));
  return parts.join('; ');
}

/** A budget in one phrase, for titles and commit statuses: `accuracy-drop 2.20 pt > 1 pt`. */
export function budgetPhrase(b: BudgetResult, compared?: Compared): string {
  const name = compared === 'base → head' ? `${b.name} vs base` : b.name;
  const value = valueText(b);
  if (value === null) return `${name} not measured`;
  if (b.verdict !== 'pass' && straddles(b)) return `${name} ${value}, too close to the ${limitText(b)} limit to call`;
  const op = b.verdict === 'pass' ? limitText(b) : `${b.direction === 'max' ? '>' : '<'} ${limitText(b).slice(2)}`;
  return `${name} ${value} ${op}`;
}
