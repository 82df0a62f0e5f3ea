import type { Config } from '../config/schema.js';
import type { ResolvedBudget } from '../ledger/budgets.js';
import { SequentialTest, testLimit, type SequentialPlan } from '../measure/stats/sequential.js';
import { SEQUENTIAL_BUDGETS, type SequentialBudget, type SequentialDecisions } from '../measure/stats/uncertainty.js';

/** The sequential latency test's plan from the config: at least `runs` rounds, at most `max-runs` or `max-seconds`. */
export function sequentialPlan(config: Config, limit: number): SequentialPlan {
  const { runs, maxRuns, maxSeconds } = config.latency;
  return { limit, confidence: config.confidence, minRounds: runs, maxRounds: Math.max(runs, maxRuns), maxMs: maxSeconds * 1000 };
}

/** One running test per speed budget of the run (reference first, judged model last in the timing pass). */
export interface SpeedTests {
  readonly tests: readonly SequentialTest[];
  /** the decisions taken, once the timing pass ended */
  decisions(): SequentialDecisions;
}

/**
 * The paired sequential tests for every speed ratio budget set (latency-regression, min-speedup): each
 * keeps sampling until its interval clears its limit or a cap is reached, in the same timing pass. A
 * run has no base model, so its latency-regression is not measured and samples nothing.
 */
export function speedTests(budgets: readonly Pick<ResolvedBudget, 'name' | 'limit'>[], config: Config, mode: 'run' | 'compare'): SpeedTests {
  const running: { name: SequentialBudget; test: SequentialTest }[] = [];
  for (const b of budgets) {
    if (!(b.name in SEQUENTIAL_BUDGETS) || running.some((r) => r.name === b.name)) continue;
    if (mode === 'run' && b.name === 'latency-regression') continue;
    const name = b.name as SequentialBudget;
    running.push({ name, test: new SequentialTest(sequentialPlan(config, testLimit(SEQUENTIAL_BUDGETS[name], b.limit))) });
  }
  return {
    tests: running.map((r) => r.test),
    decisions: () => Object.fromEntries(running.flatMap((r) => (r.test.result() ? [[r.name, r.test.result()!]] : []))),
  };
}
