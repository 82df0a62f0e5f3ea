import { binomialHalfCdf } from './binomial.js';

/**
 * A sequential test of "is the head slower than the base by more than the limit?" on interleaved,
 * paired latency rounds. Rounds alternate the order (A B, then B A), and each pair of rounds
 * (A B B A) is one block, so whichever model runs first or second gets no advantage; a block's
 * statistic is the mean of its two log(head / base) ratios. The interval is the sign-test interval of
 * the blocks' median (distribution-free: it assumes only independent blocks, not normality or
 * symmetry). It is re-checked at geometric checkpoints with alpha spending: look k of K may miss with
 * probability alpha_k = alpha * (n_k - n_(k-1)) / n_K, so all looks together miss with at most alpha
 * (union bound) however often the procedure looked.
 */
export interface SequentialPlan {
  /** largest tolerated slowdown, as a fraction: 0.05 = head at most 5% slower than base */
  limit: number;
  /** overall confidence of the decision, over all looks */
  confidence: number;
  /** timed rounds before the first look */
  minRounds: number;
  /** timed rounds at most: the last checkpoint */
  maxRounds: number;
  /** wall time of the timed rounds at most, ms (0 = no time cap) */
  maxMs: number;
}

/**
 * Why the sampling stopped: a side was cleared, a cap was reached with the limit still inside, or a
 * decision beyond the limit did not hold on a fresh pair of sessions.
 */
export type StopReason = 'decided' | 'round-cap' | 'time-cap' | 'not-replicated';
export type Outcome = 'beyond' | 'within' | 'undecided';

/** What the ledger records about a sequential latency decision. */
export interface SequentialRecord {
  outcome: Outcome;
  stopped: StopReason;
  /** timed rounds (each runs both models once) used for the decision */
  rounds: number;
  /** checks of the interval made, of `planned_looks` */
  looks: number;
  planned_looks: number;
  /** two-sided miss probability spent on the look that decided */
  look_alpha: number;
  /** head / base − 1 from the blocks' median log ratio, and its interval at this look */
  estimate: number;
  ci: [number, number];
  /**
   * the runner's noise: two runs of the same model in one block differ by up to ± this fraction
   * (95% range, from a robust spread of the same-model pairs measured in this comparison)
   */
  noise: number;
  /** half-width of the final interval as a fraction of the ratio: the resolution this run reached */
  half_width: number;
  /**
   * a decision beyond the limit measured again on a fresh pair of sessions, opened in the other order:
   * the paired test cancels drift between rounds, but not a speed that belongs to one session for its
   * whole life (where its memory and threads landed), which only new sessions vary
   */
  replication?: Pick<SequentialRecord, 'outcome' | 'rounds' | 'estimate' | 'ci'>;
}

const MIN_FIRST_BLOCKS = 4;

/**
 * Checkpoints in blocks, halving down from the cap while at least the minimum: n_1 < … < n_K = cap.
 * A checkpoint too small for any sign-test interval at its alpha is merged into the next.
 */
export function checkpoints(plan: Pick<SequentialPlan, 'minRounds' | 'maxRounds'>, alpha: number): number[] {
  const cap = Math.max(MIN_FIRST_BLOCKS, Math.floor(plan.maxRounds / 2));
  const first = Math.min(cap, Math.max(MIN_FIRST_BLOCKS, Math.ceil(plan.minRounds / 2)));
  const out = [cap];
  while (Math.floor(out[0] / 2) >= first) out.unshift(Math.floor(out[0] / 2));
  while (out.length > 1 && binomialHalfCdf(0, out[0]) > (alpha * out[0]) / cap / 2) out.shift();
  return out;
}

/** Miss probability of each look: the increments of a linear spending function over the checkpoints. */
export function lookAlphas(points: readonly number[], alpha: number): number[] {
  const last = points[points.length - 1];
  return points.map((n, k) => (alpha * (n - (k ? points[k - 1] : 0))) / last);
}

/**
 * The sign-test interval of the median of `values` at two-sided level 1 − alpha: order statistics
 * k and n − k + 1 with the largest k such that P(Bin(n, 1/2) ≤ k − 1) ≤ alpha / 2. Null when n is too
 * small for any interval at that level.
 */
export function signTestInterval(values: readonly number[], alpha: number): [number, number] | null {
  const n = values.length;
  // P(X ≤ k) accumulated term by term: pmf(i + 1) = pmf(i) · (n − i) / (i + 1)
  let k = 0;
  let pmf = Math.pow(0.5, n);
  let cdf = pmf;
  while (k + 1 <= Math.ceil(n / 2) && cdf <= alpha / 2) {
    k++;
    pmf *= (n - k + 1) / k;
    cdf += pmf;
  }
  if (k === 0) return null;
  const sorted = Float64Array.from(values).sort();
  return [sorted[k - 1], sorted[n - k]];
}

function median(sorted: Float64Array): number {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) >> 1] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/** Per block (rounds 2j and 2j+1): the mean log(head / base), and the two same-model log ratios. */
export function blocks(base: readonly number[], head: readonly number[]): { ratios: number[]; same: number[] } {
  const n = Math.floor(Math.min(base.length, head.length) / 2);
  const ratios: number[] = [];
  const same: number[] = [];
  for (let j = 0; j < n; j++) {
    const a0 = base[2 * j];
    const a1 = base[2 * j + 1];
    const b0 = head[2 * j];
    const b1 = head[2 * j + 1];
    ratios.push((Math.log(b0 / a0) + Math.log(b1 / a1)) / 2);
    same.push(Math.log(a1 / a0), Math.log(b1 / b0));
  }
  return { ratios, same };
}

/** 95% range of a same-model pair's ratio, from the median absolute deviation of their logs. */
export function pairNoise(sameLogRatios: readonly number[]): number {
  if (sameLogRatios.length === 0) return NaN;
  const s = Float64Array.from(sameLogRatios).sort();
  const m = median(s);
  const dev = Float64Array.from(s, (x) => Math.abs(x - m)).sort();
  return Math.expm1(1.959964 * 1.4826 * median(dev));
}

/** One look at `rounds` paired rounds with miss probability `alpha`. */
export function look(base: readonly number[], head: readonly number[], limit: number, alpha: number): Pick<SequentialRecord, 'outcome' | 'estimate' | 'ci' | 'noise' | 'half_width'> {
  const { ratios, same } = blocks(base, head);
  const noise = pairNoise(same);
  const ci = signTestInterval(ratios, alpha);
  const center = median(Float64Array.from(ratios).sort());
  const estimate = Math.expm1(center);
  if (!ci) return { outcome: 'undecided', estimate, ci: [-1, Number.MAX_VALUE], noise, half_width: Number.MAX_VALUE };
  const bound = Math.log1p(limit);
  const outcome: Outcome = ci[0] > bound ? 'beyond' : ci[1] <= bound ? 'within' : 'undecided';
  return { outcome, estimate, ci: [Math.expm1(ci[0]), Math.expm1(ci[1])], noise, half_width: (Math.exp(ci[1]) - Math.exp(ci[0])) / 2 / Math.exp(center) };
}

/**
 * The running test: after each timed round the sampler asks `check` whether to stop. It looks only at
 * checkpoints, at the round cap, and once at the time cap (with the next checkpoint's alpha, so a
 * time-capped run spends no more than a full one).
 */
export class SequentialTest {
  readonly points: number[];
  readonly alphas: number[];
  private next = 0;
  private record: SequentialRecord | undefined;

  constructor(readonly plan: SequentialPlan) {
    this.points = checkpoints(plan, 1 - plan.confidence);
    this.alphas = lookAlphas(this.points, 1 - plan.confidence);
  }

  /** Whether to stop after `base.length` paired rounds, `elapsedMs` after the first timed round. */
  check(base: readonly number[], head: readonly number[], elapsedMs: number): boolean {
    if (this.record) return true;
    const rounds = Math.min(base.length, head.length);
    const blocksDone = Math.floor(rounds / 2);
    // a look needs whole blocks, and the time cap waits for the first checkpoint: an interval from
    // fewer blocks could not be formed at the first look's alpha
    if (rounds % 2 === 1) return false;
    const atPoint = blocksDone >= this.points[this.next];
    const timeUp = this.plan.maxMs > 0 && elapsedMs >= this.plan.maxMs && blocksDone >= this.points[0];
    if (!atPoint && !timeUp) return false;
    const k = this.next;
    const l = look(base.slice(0, rounds), head.slice(0, rounds), this.plan.limit, this.alphas[k]);
    this.next++;
    const last = this.next >= this.points.length;
    if (l.outcome !== 'undecided' || last || timeUp) {
      const stopped: StopReason = l.outcome !== 'undecided' ? 'decided' : last ? 'round-cap' : 'time-cap';
      this.record = { ...l, stopped, rounds, looks: this.next, planned_looks: this.points.length, look_alpha: this.alphas[k] };
      return true;
    }
    return false;
  }

  /** The decision, once `check` returned true. */
  result(): SequentialRecord | undefined {
    return this.record;
  }

  /** Whether the decision is beyond the limit and still has to hold on a fresh pair of sessions. */
  needsReplication(): boolean {
    return this.record?.outcome === 'beyond' && !this.record.replication;
  }

  /** A test with the same plan and nothing seen, for the replication's sessions. */
  fresh(): SequentialTest {
    return new SequentialTest(this.plan);
  }

  /**
   * Keep a beyond-the-limit decision only when the fresh sessions' test decided the same; otherwise the
   * difference is the sessions', not the models': undecided, with both measurements recorded.
   */
  replicate(again: SequentialRecord): void {
    if (!this.needsReplication()) throw new Error('replicate: only a decision beyond the limit is replicated, once');
    const replication = { outcome: again.outcome, rounds: again.rounds, estimate: again.estimate, ci: again.ci };
    const first = this.record!;
    // not confirmed: the interval spans both measurements, so it straddles the limit and the verdict is a warning
    const ci: [number, number] = [Math.min(first.ci[0], again.ci[0]), Math.max(first.ci[1], again.ci[1])];
    this.record = again.outcome === 'beyond' ? { ...first, replication } : { ...first, outcome: 'undecided', stopped: 'not-replicated', ci, replication };
  }
}

/**
 * The whole procedure over an injected stream of paired rounds [base ms, head ms] and a clock: what
 * the sampler does with real sessions, as a pure function. A stream that ends early is judged as a
 * round cap at its last complete look.
 */
export function runSequential(rounds: Iterable<readonly [number, number]>, plan: SequentialPlan, now: () => number = () => 0): SequentialRecord | undefined {
  const test = new SequentialTest(plan);
  const base: number[] = [];
  const head: number[] = [];
  const start = now();
  for (const [a, b] of rounds) {
    base.push(a);
    head.push(b);
    if (test.check(base, head, now() - start)) break;
  }
  return test.result();
}

const pct = (x: number): string => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)}%`;
const times = (x: number): string => `${x.toFixed(2)}x`;

/**
 * What a sequential test judges. Both are the same test on log(head / base): a slowdown limit L is the
 * bound log(1 + L); a speedup floor S (base / head at least S) is the bound log(1 / S), with "within"
 * meaning the speedup interval lies wholly above the floor.
 */
export type SequentialQuantity = 'slowdown' | 'speedup';

/** The test's limit on head / base − 1 for a budget's limit in its own terms. */
export function testLimit(quantity: SequentialQuantity, limit: number): number {
  return quantity === 'slowdown' ? limit : 1 / limit - 1;
}

/** The decision's estimate and interval in the budget's terms: head / base − 1, or the speedup base / head. */
export function inBudgetTerms(r: Pick<SequentialRecord, 'estimate' | 'ci'>, quantity: SequentialQuantity): { estimate: number; ci: [number, number] } {
  if (quantity === 'slowdown') return { estimate: r.estimate, ci: r.ci };
  const speedup = (x: number): number => 1 / (1 + x);
  // an interval with no upper end (too few blocks for any) has no lower speedup bound either
  return { estimate: speedup(r.estimate), ci: [r.ci[1] >= Number.MAX_VALUE ? 0 : speedup(r.ci[1]), r.ci[0] <= -1 ? Number.MAX_VALUE : speedup(r.ci[0])] };
}

/** The clause a replicated decision adds: the fresh sessions' interval. */
function confirmed(r: SequentialRecord, quantity: SequentialQuantity): string {
  if (!r.replication) return '';
  const again = inBudgetTerms(r.replication, quantity);
  const fmt = quantity === 'slowdown' ? pct : times;
  return `, and again on a fresh pair of sessions ([${fmt(again.ci[0])}, ${fmt(again.ci[1])}] after ${r.replication.rounds} rounds)`;
}

/** The sentence the ledger and the comment show: which case applied, with the measured noise. */
export function describeDecision(r: SequentialRecord, limit: number, quantity: SequentialQuantity = 'slowdown'): string {
  const where = `after ${r.rounds} interleaved rounds (${r.looks} of ${r.planned_looks} looks)`;
  const shown = inBudgetTerms(r, quantity);
  const fmt = quantity === 'slowdown' ? pct : times;
  const interval = `[${fmt(shown.ci[0])}, ${fmt(shown.ci[1])}]`;
  const lim = quantity === 'slowdown' ? `${(limit * 100).toFixed(1)}% limit` : `${times(limit)} limit`;
  if (quantity === 'slowdown') {
    if (r.outcome === 'beyond') return `slower beyond the ${lim}: interval ${interval} wholly above it ${where}${confirmed(r, quantity)}`;
    if (r.outcome === 'within') return `within the ${lim}: interval ${interval} wholly below it ${where}`;
  } else {
    if (r.outcome === 'beyond') return `short of the ${lim}: interval ${interval} wholly below it ${where}${confirmed(r, quantity)}`;
    if (r.outcome === 'within') return `meets the ${lim}: interval ${interval} wholly above it ${where}`;
  }
  if (r.stopped === 'not-replicated' && r.replication) {
    const again = inBudgetTerms(r.replication, quantity);
    return `could not decide: one pair of sessions measured it beyond the ${lim} ${where}, a fresh pair did not ([${fmt(again.ci[0])}, ${fmt(again.ci[1])}] after ${r.replication.rounds} rounds), so the difference was the sessions', not the models'; interval over both ${interval}; noise ±${(r.noise * 100).toFixed(1)}% on this runner`;
  }
  const cap = r.stopped === 'time-cap' ? 'time cap' : 'round cap';
  return `could not decide: noise ±${(r.noise * 100).toFixed(1)}% on this runner; interval ${interval} still straddles the ${lim} at the ${cap}, ${where}`;
}
