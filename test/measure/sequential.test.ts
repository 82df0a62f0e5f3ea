import { describe, expect, it } from 'vitest';
import { checkpoints, describeDecision, lookAlphas, pairNoise, runSequential, SequentialTest, signTestInterval, testLimit, type SequentialPlan, type SequentialRecord } from '../../src/measure/stats/sequential.js';
import { decidedUncertainty } from '../../src/measure/stats/uncertainty.js';
import { evaluateBudgets } from '../../src/ledger/budgets.js';
import { step } from '../ledger/fixtures.js';
import { seededRandom } from '../../src/util/random.js';

/**
 * Paired rounds [base ms, head ms] from a busy runner: a load level that drifts and hits both runs of
 * a round alike, independent lognormal jitter per run of sd `sigma` (in log), and preemptions that make
 * a run `spike`x slower with probability `spikeRate`. The head is `slowdown` slower than the base.
 */
function* runner(seed: number, slowdown: number, sigma: number, spikeRate = 0, spike = 6): Generator<[number, number]> {
  const random = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  let load = 0;
  for (;;) {
    load = 0.9 * load + 0.1 * gauss();
    const run = (scale: number) => scale * Math.exp(load + sigma * gauss()) * (random() < spikeRate ? spike : 1);
    yield [run(1), run(1 + slowdown)];
  }
}

const plan: SequentialPlan = { limit: 0.05, confidence: 0.95, minRounds: 30, maxRounds: 2000, maxMs: 0 };

describe('sequential latency decision over injected rounds', () => {
  it('an A/A comparison with heavy noise and preemption spikes never fails (40 runners)', () => {
    const outcomes = Array.from({ length: 40 }, (_, s) => runSequential(runner(s + 1, 0, 0.3, 0.1), plan)!);
    expect(outcomes.filter((o) => o.outcome === 'beyond')).toEqual([]);
    // most decide within the limit before the cap, the rest warn at it; none claims a slowdown
    expect(outcomes.filter((o) => o.outcome === 'within').length).toBeGreaterThan(25);
    expect(outcomes.filter((o) => o.outcome === 'undecided').every((o) => o.stopped === 'round-cap')).toBe(true);
  });

  it('a clear 30% slowdown fails, and stops early once the interval is wholly beyond the limit', () => {
    for (let s = 1; s <= 20; s++) {
      const r = runSequential(runner(s, 0.3, 0.3, 0.1), plan)!;
      expect(r.outcome).toBe('beyond');
      expect(r.stopped).toBe('decided');
      expect(r.ci[0]).toBeGreaterThan(0.05);
      expect(r.rounds).toBeLessThan(plan.maxRounds);
      expect(describeDecision(r, 0.05)).toMatch(/^slower beyond the 5\.0% limit: interval \[\+\d+\.\d%, \+\d+\.\d%\] wholly above it after \d+ interleaved rounds/);
    }
  });

  it('a slowdown at the limit straddles it: at the round cap it warns with the measured noise, never guesses', () => {
    const r = runSequential(runner(7, 0.05, 0.2), { ...plan, maxRounds: 400 })!;
    expect(r.outcome).toBe('undecided');
    expect(r.stopped).toBe('round-cap');
    expect(r.rounds).toBe(400);
    expect(r.looks).toBe(r.planned_looks);
    expect(r.ci[0]).toBeLessThan(0.05);
    expect(r.ci[1]).toBeGreaterThan(0.05);
    // two runs of the same model differ by about ±(e^(1.96·√2·0.2) − 1) ≈ ±74% in this stream
    expect(r.noise).toBeGreaterThan(0.5);
    expect(r.noise).toBeLessThan(1);
    expect(describeDecision(r, 0.05)).toMatch(/^could not decide: noise ±\d+\.\d% on this runner; interval \[.*\] still straddles the 5\.0% limit at the round cap, after 400 interleaved rounds/);
  });

  it('stops at the time cap (with the next look\'s alpha) and says so', () => {
    let t = 0;
    const r = runSequential(runner(3, 0.05, 0.2), { ...plan, maxMs: 150 }, () => (t += 1))!;
    expect(r.stopped).toBe('time-cap');
    expect(r.outcome).toBe('undecided');
    expect(r.rounds).toBeGreaterThanOrEqual(150);
    expect(r.rounds).toBeLessThan(200);
    expect(describeDecision(r, 0.05)).toContain('at the time cap');
  });

  it('looks are geometric and spend at most alpha in total; the first look can form an interval', () => {
    const points = checkpoints(plan, 0.05);
    expect(points).toEqual([15, 31, 62, 125, 250, 500, 1000]);
    const alphas = lookAlphas(points, 0.05);
    expect(alphas.reduce((a, b) => a + b, 0)).toBeCloseTo(0.05, 12);
    expect(alphas[alphas.length - 1]).toBeCloseTo(0.025, 12);
    expect(signTestInterval(Array.from({ length: points[0] }, (_, i) => i), alphas[0])).not.toBeNull();
  });

  it('with the limit at no slowdown, an A/A comparison fails in at most alpha/2 of runs over all looks', () => {
    const runs = 300;
    const fails = Array.from({ length: runs }, (_, s) => runSequential(runner(1000 + s, 0, 0.2), { ...plan, limit: 0, maxRounds: 240 })!).filter((r) => r.outcome === 'beyond').length;
    // alpha/2 = 2.5%: 7.5 expected at the bound, the union bound makes it smaller
    expect(fails).toBeLessThanOrEqual(12);
  });
});

describe('signTestInterval', () => {
  it('takes order statistics 6 and 15 of 20 at 95% (P(Bin(20, 1/2) ≤ 5) = 0.0207 ≤ 0.025 < P(≤ 6) = 0.0577)', () => {
    const xs = Array.from({ length: 20 }, (_, i) => 20 - i);
    expect(signTestInterval(xs, 0.05)).toEqual([6, 15]);
  });
  it('is null when no interval has that confidence', () => {
    expect(signTestInterval([1, 2, 3, 4, 5], 0.05)).toBeNull();
  });
});

describe('pairNoise', () => {
  it('is the 95% range of a same-model pair: ±(e^(1.96·s) − 1) for log ratios of spread s', () => {
    const random = seededRandom(9);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const s = 0.1;
    expect(pairNoise(Array.from({ length: 20000 }, () => s * gauss()))).toBeCloseTo(Math.expm1(1.96 * s), 2);
  });
});

/** A speedup floor judged the way a run judges min-speedup: the sequential decision through the budget's verdict. */
function judgeSpeedup(record: SequentialRecord, floor: number) {
  const budget = { name: 'min-speedup' as const, limit: floor, direction: 'min' as const, source: 'flag' as const };
  const uncertainty = decidedUncertainty({ 'min-speedup': record }, { 'min-speedup': floor });
  return evaluateBudgets([budget], { dense: step(), final: step({ name: 'prune', latency: { batch: 1, p50_ms: 0.21, p95_ms: 0.3, runs: record.rounds } }), uncertainty })[0];
}

describe('min-speedup: the same sequential decision, against a speedup floor', () => {
  // rounds [dense ms, pruned ms] where the pruned model runs `speedup` times as fast
  const pruned = (seed: number, speedup: number, sigma: number, spikeRate = 0) => runner(seed, 1 / speedup - 1, sigma, spikeRate);
  const floorPlan = (floor: number, maxRounds = 2000): SequentialPlan => ({ ...plan, limit: testLimit('speedup', floor), maxRounds });

  it('an A/A pair with heavy noise and spikes never fails a 0.95x floor (40 runners)', () => {
    const verdicts = Array.from({ length: 40 }, (_, s) => judgeSpeedup(runSequential(pruned(s + 1, 1, 0.3, 0.1), floorPlan(0.95))!, 0.95));
    expect(verdicts.filter((b) => b.verdict === 'fail')).toEqual([]);
    expect(verdicts.filter((b) => b.verdict === 'pass').length).toBeGreaterThan(25);
  });

  it('a clearly slower pruned model (1/1.3 of dense speed) fails a 1x floor, early, with the interval wholly below it', () => {
    for (let s = 1; s <= 10; s++) {
      const r = runSequential(pruned(s, 1 / 1.3, 0.3, 0.1), floorPlan(1))!;
      const b = judgeSpeedup(r, 1);
      expect(b.verdict).toBe('fail');
      expect(r.stopped).toBe('decided');
      expect(r.rounds).toBeLessThan(2000);
      expect(b.ci![1]).toBeLessThan(1);
      expect(b.sequential).toBe(r);
      expect(b.detail).toMatch(/short of the 1\.00x limit: interval \[0\.\d\dx, 0\.\d\dx\] wholly below it after \d+ interleaved rounds/);
    }
  });

  it('a clearly faster one (2x) passes a 1.5x floor with the interval wholly above it', () => {
    const r = runSequential(pruned(4, 2, 0.2), floorPlan(1.5))!;
    const b = judgeSpeedup(r, 1.5);
    expect(b.verdict).toBe('pass');
    expect(b.ci![0]).toBeGreaterThanOrEqual(1.5);
    expect(b.actual).toBeGreaterThan(1.5);
    expect(b.detail).toContain('meets the 1.50x limit');
  });

  it('a speedup at the floor cannot be decided: warn at the round cap with the measured noise, never a guess', () => {
    const r = runSequential(pruned(7, 1.5, 0.2), floorPlan(1.5, 400))!;
    const b = judgeSpeedup(r, 1.5);
    expect(r.outcome).toBe('undecided');
    expect(r.rounds).toBe(400);
    expect(b.verdict).toBe('warn');
    expect(b.ci![0]).toBeLessThan(1.5);
    expect(b.ci![1]).toBeGreaterThan(1.5);
    expect(r.noise).toBeGreaterThan(0.5);
    expect(b.detail).toMatch(/could not decide: noise ±\d+\.\d% on this runner; interval \[\d\.\d\dx, \d\.\d\dx\] still straddles the 1\.50x limit at the round cap, after 400 interleaved rounds/);
    // the sentence says why: no "interval straddles the limit" added on top
    expect(b.detail).not.toContain('interval straddles the limit');
  });
});

/** Feed `rounds` into `test` until it stops; its decision. */
function decide(test: SequentialTest, rounds: Iterable<readonly [number, number]>): SequentialRecord {
  const base: number[] = [];
  const head: number[] = [];
  for (const [a, b] of rounds) {
    base.push(a);
    head.push(b);
    if (test.check(base, head, 0)) break;
  }
  return test.result()!;
}

/** latency-regression judged the way compare judges it, from the sequential decision. */
function judgeSlowdown(record: SequentialRecord, limit: number) {
  const budget = { name: 'latency-regression' as const, limit, direction: 'max' as const, source: 'default' as const };
  const uncertainty = decidedUncertainty({ 'latency-regression': record }, { 'latency-regression': limit });
  return evaluateBudgets([budget], { dense: step(), base: step({ name: 'base' }), final: step({ name: 'head', latency: { batch: 1, p50_ms: 0.21, p95_ms: 0.3, runs: record.rounds } }), uncertainty })[0];
}

describe('a decision beyond the limit is measured again on a fresh pair of sessions', () => {
  it('one pair whose head session alone runs 12% slower fails nothing: a fresh pair of the same model does not repeat it, and the budget warns naming both', () => {
    // the same model twice; the first head session landed badly and is 12% slower for its whole life
    const test = new SequentialTest(plan);
    const first = decide(test, runner(3, 0.12, 0.05));
    expect(first.outcome).toBe('beyond');
    expect(test.needsReplication()).toBe(true);
    const again = test.fresh();
    test.replicate(decide(again, runner(4, 0, 0.05)));
    const r = test.result()!;
    expect(r).toMatchObject({ outcome: 'undecided', stopped: 'not-replicated', replication: { outcome: 'within' } });
    expect(r.ci[0]).toBeLessThan(0.05);
    expect(r.ci[1]).toBeGreaterThan(0.05);
    expect(test.needsReplication()).toBe(false);
    const b = judgeSlowdown(r, 0.05);
    expect(b.verdict).toBe('warn');
    expect(b.detail).toMatch(/could not decide: one pair of sessions measured it beyond the 5\.0% limit after \d+ interleaved rounds .*, a fresh pair did not \(\[[−+][\d.]+%, [−+][\d.]+%\] after \d+ rounds\), so the difference was the sessions', not the models'/);
  });

  it('a model really 15% slower fails on both pairs, and the detail gives both intervals', () => {
    const test = new SequentialTest(plan);
    decide(test, runner(5, 0.15, 0.05));
    test.replicate(decide(test.fresh(), runner(6, 0.15, 0.05)));
    const r = test.result()!;
    expect(r).toMatchObject({ outcome: 'beyond', stopped: 'decided', replication: { outcome: 'beyond' } });
    const b = judgeSlowdown(r, 0.05);
    expect(b.verdict).toBe('fail');
    expect(b.detail).toMatch(/slower beyond the 5\.0% limit: interval .* wholly above it after \d+ interleaved rounds .*, and again on a fresh pair of sessions \(\[\+[\d.]+%, \+[\d.]+%\] after \d+ rounds\)/);
  });

  it('only a decision beyond the limit is replicated, and only once', () => {
    const within = new SequentialTest(plan);
    decide(within, runner(7, 0, 0.05));
    expect(within.result()!.outcome).toBe('within');
    expect(within.needsReplication()).toBe(false);
    expect(() => within.replicate(within.result()!)).toThrow(/only a decision beyond the limit/);
  });
});
