/**
 * The correction loop of a latency target: allocate under a predicted budget, prune, measure the real
 * speedup against dense, and, when it falls short, tighten the budget by the shortfall and try again,
 * a bounded number of times. The per-layer model ignores what layers do to each other (fusion, layout
 * changes between kernels), so the measurement, not the prediction, decides.
 */

/**
 * At most this many allocations after the first (per spread: a spread that replaces the uniform cut
 * gets a loop of its own). Width steps make the measured speed jump between budgets, so a first cut
 * far past the target can swing short and past again before the bracket narrows; an attempt at
 * batch 1 costs a prune and a few seconds of timing, and none when its file was timed before.
 */
export const MAX_CORRECTIONS = 6;
/** A budget that chose channels tried before, short of the target, is tightened at least this much next (to the middle of the bracket when one is open and nearer). */
export const REPEAT_STEP = 0.05;
/** A measured speedup this far above the target removed more than it had to: the budget is loosened to keep channels. */
export const OVERSHOOT = 0.1;

export interface Attempt {
  /** predicted-latency budget the allocation was made under, ms */
  budgetMs: number;
  /** the allocation's prediction reached its budget */
  reached: boolean;
  /** kept counts, as a comparable signature (same signature: same model) */
  kept: string;
  /** measured dense p50 / this p50 at the target batch, interleaved */
  speedup: number;
}

export type Correction =
  | { kind: 'met' }
  | { kind: 'correct'; budgetMs: number }
  | { kind: 'stop'; reason: 'limit' | 'unreachable' | 'unchanged'; detail: string };

/** What to do after the latest attempt, given every attempt so far and the speedup asked for. */
export function nextCorrection(attempts: readonly Attempt[], targetSpeedup: number, maxCorrections = MAX_CORRECTIONS): Correction {
  const last = attempts[attempts.length - 1];
  const left = attempts.length <= maxCorrections;
  // an allocation tried before would measure the same again
  const unchanged = attempts.slice(0, -1).some((a) => a.kept === last.kept);
  // the proportional correction, kept strictly between the loosest budget that met the target and the
  // tightest that fell short (bisecting once both are known), so the loop never swings back and forth
  const bracketed = (proposal: number): number => {
    const met = attempts.filter((a) => a.speedup >= targetSpeedup).map((a) => a.budgetMs);
    const short = attempts.filter((a) => a.speedup < targetSpeedup).map((a) => a.budgetMs);
    const lo = met.length ? Math.max(...met) : -Infinity;
    const hi = short.length ? Math.min(...short) : Infinity;
    if (proposal > lo && proposal < hi) return proposal;
    return Number.isFinite(lo) && Number.isFinite(hi) ? (lo + hi) / 2 : proposal;
  };
  // a budget between one that met the target and one that fell short may still choose other channels,
  // even when the last budget chose channels tried before
  const open = attempts.some((a) => a.speedup >= targetSpeedup) && attempts.some((a) => a.speedup < targetSpeedup);
  if (last.speedup >= targetSpeedup) {
    // well past the target: a looser budget keeps channels (accuracy) and may still meet it
    if (last.speedup > targetSpeedup * (1 + OVERSHOOT) && left && (!unchanged || open)) return { kind: 'correct', budgetMs: bracketed((last.budgetMs * last.speedup) / targetSpeedup) };
    return { kind: 'met' };
  }
  const short = `measured ${last.speedup.toFixed(2)}x of ${targetSpeedup.toFixed(2)}x`;
  if (!last.reached) return { kind: 'stop', reason: 'unreachable', detail: `${short}; every channel group is already at its smallest fast width` };
  // a tighter budget that chose the same channels is tightened again from there: the prediction moves
  // in steps, and the next budget down may cross one
  if (!left) return unchanged ? { kind: 'stop', reason: 'unchanged', detail: `${short}; the last budget chose channels tried before, after ${maxCorrections} corrections` } : { kind: 'stop', reason: 'limit', detail: `${short} after ${maxCorrections} corrections` };
  // the prediction was optimistic by the shortfall: ask it for that much more, and at least REPEAT_STEP
  // more when that shortfall already chose the same channels once
  const proportional = (last.budgetMs * last.speedup) / targetSpeedup;
  return { kind: 'correct', budgetMs: bracketed(unchanged ? Math.min(proportional, last.budgetMs * (1 - REPEAT_STEP)) : proportional) };
}

/**
 * The attempt that ships: of those that met the target, the one that kept the most MACs (the least
 * pruned, so the most accuracy); when none met it, the fastest.
 */
export function shippedAttempt(attempts: readonly { speedup: number; macs: number }[], targetSpeedup: number): number {
  const met = attempts.map((a, i) => ({ ...a, i })).filter((a) => a.speedup >= targetSpeedup);
  if (met.length > 0) return met.reduce((b, a) => (a.macs > b.macs ? a : b)).i;
  return attempts.reduce((b, a, i) => (a.speedup > attempts[b].speedup ? i : b), 0);
}
