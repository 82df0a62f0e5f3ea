/**
 * Pruning schedules, pure: which sparsity each step of a gradual run aims at, when the run stops early,
 * and which step ships. No I/O here; `src/pipeline/gradual.ts` runs the loop.
 */
import type { Verdict } from '../config/budgets.js';

/**
 * The cubic schedule of gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune"):
 * s_t = s_f + (s_i - s_f)(1 - t/N)^3 for t = 1..N. Large steps first, while there are many redundant
 * weights, small ones near the target. Strictly rising for s_f > s_i, and the last value is s_f exactly.
 */
export function cubicSchedule(initial: number, final: number, steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`cubicSchedule: steps must be a whole number of 1 or more (got ${steps})`);
  if (!(initial >= 0 && final < 1 && final > initial)) throw new Error(`cubicSchedule: need 0 <= initial < final < 1 (got ${initial} -> ${final})`);
  const out: number[] = [];
  for (let t = 1; t <= steps; t++) out.push(t === steps ? final : final + (initial - final) * (1 - t / steps) ** 3);
  return out;
}

/**
 * Structured steps remove channels from the already-smaller model: the fraction of the channels still
 * there that must go so that the cumulative fraction of the dense model's channels removed reaches
 * `target`. 0 when the model is already there.
 */
export function fractionOfRemaining(remaining: number, denseTotal: number, target: number): number {
  if (remaining <= 0 || denseTotal <= 0) return 0;
  const keep = denseTotal * (1 - target);
  return Math.min(1, Math.max(0, (remaining - keep) / remaining));
}

/**
 * Patience-based cliff: quality has dropped more than `threshold` below dense for the last `patience`
 * steps in a row. `drops` are dense-minus-step accuracy drops, oldest first.
 */
export function fellOffCliff(drops: readonly number[], threshold: number, patience: number): boolean {
  if (drops.length < patience) return false;
  return drops.slice(drops.length - patience).every((d) => d > threshold);
}

/** What a schedule step is judged on when choosing the step that ships. */
export interface StepOutcome {
  index: number;
  /** fraction of prunable weights zero or removed, counted in the saved file */
  sparsity: number;
  /** top-1 on the evaluation set; null when not evaluated */
  accuracy: number | null;
  /** verdict of every budget for this step against dense */
  verdicts: readonly Verdict[];
}

export interface Choice {
  index: number;
  /** whether the chosen step meets every budget (no budget fails) */
  meetsBudgets: boolean;
  reason: string;
}

const fails = (s: StepOutcome): number => s.verdicts.filter((v) => v === 'fail').length;
const acc = (s: StepOutcome): number => s.accuracy ?? -Infinity;

/**
 * The step that ships. Among steps where no budget fails (a `warn` is allowed, as the gate's exit code
 * allows it): the sparsest, ties to the higher accuracy. When every step fails a budget: the least bad,
 * the fewest failed budgets and then the highest accuracy, and the run's verdict stays `fail`.
 */
export function chooseStep(steps: readonly StepOutcome[]): Choice {
  if (steps.length === 0) throw new Error('chooseStep: no steps');
  const passing = steps.filter((s) => fails(s) === 0);
  if (passing.length > 0) {
    const best = passing.reduce((a, b) => (b.sparsity > a.sparsity || (b.sparsity === a.sparsity && acc(b) > acc(a)) ? b : a));
    const others = passing.length - 1;
    return {
      index: best.index,
      meetsBudgets: true,
      reason: `the sparsest step that meets every budget${others > 0 ? ` (${others} other step${others > 1 ? 's' : ''} also met them)` : ''}`,
    };
  }
  const best = steps.reduce((a, b) => (fails(b) < fails(a) || (fails(b) === fails(a) && acc(b) > acc(a)) ? b : a));
  return {
    index: best.index,
    meetsBudgets: false,
    reason: `no step meets every budget; shipping the least bad (${fails(best)} failed budget${fails(best) === 1 ? '' : 's'}, the highest accuracy among those with the fewest), and the verdict fails`,
  };
}
