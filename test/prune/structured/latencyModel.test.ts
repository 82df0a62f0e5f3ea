import { describe, expect, it } from 'vitest';
import { MAX_CORRECTIONS, nextCorrection, shippedAttempt } from '../../../src/prune/structured/latencyTarget.js';
import { allocateForLatency, capAtEvenness, capFloor, evenCap, predictMs, relativeAt, splitDense, uniformForLatency, type LayerTable } from '../../../src/prune/structured/latencyModel.js';
import { allowedWidths } from '../../../src/prune/structured/widths.js';

/** A layer whose time is proportional to its kept input times its kept output channels. */
function bilinear(node: string, inRoot: number | undefined, outRoot: number | undefined, cin: number, cout: number, ms: number): LayerTable {
  const grid = (n: number) => [n / 4, n / 2, (3 * n) / 4, n];
  return {
    node, inRoot, outRoot, depthwise: false, cin, cout, ms,
    inCurve: inRoot === undefined ? [] : grid(cin).map((c) => ({ count: c, ms: (ms * c) / cin })),
    outCurve: outRoot === undefined ? [] : grid(cout).map((c) => ({ count: c, ms: (ms * c) / cout })),
  };
}

describe('the per-layer latency model', () => {
  it('interpolates between timed counts and is exact at them', () => {
    const curve = [{ count: 16, ms: 1 }, { count: 32, ms: 3 }];
    expect(relativeAt(curve, 3, 32)).toBe(1);
    expect(relativeAt(curve, 3, 24)).toBeCloseTo(2 / 3);
    expect(relativeAt(curve, 3, 8)).toBeCloseTo(1 / 6);
  });

  it('predicts the dense time at dense counts and scales each layer by both of its groups', () => {
    const tables = [bilinear('a', undefined, 1, 3, 32, 2), bilinear('b', 1, 2, 32, 64, 4), bilinear('c', 2, undefined, 64, 10, 1)];
    const { restMs: rest, scale } = splitDense(tables, 10);
    expect(rest).toBe(3);
    expect(scale).toBe(1);
    // layers that add up to more than the model: their share is scaled to it
    expect(splitDense(tables, 3.5)).toEqual({ restMs: 0, scale: 0.5 });
    expect(predictMs(tables, rest, new Map())).toBeCloseTo(10);
    // group 1 halved: a 2 -> 1, b 4 -> 2
    expect(predictMs(tables, rest, new Map([[1, 16]]))).toBeCloseTo(7);
    // both halved: b 4 -> 1
    expect(predictMs(tables, rest, new Map([[1, 16], [2, 32]]))).toBeCloseTo(3 + 1 + 1 + 0.5);
  });
});

describe('allocation under a latency budget', () => {
  const tables = [bilinear('a', undefined, 1, 3, 32, 2), bilinear('b', 1, 2, 32, 64, 4), bilinear('c', 2, undefined, 64, 10, 1)];
  const flat = (n: number, v = 1) => new Float64Array(n).fill(v);

  it('stops as soon as the prediction fits the budget, on fast widths only', () => {
    const r = allocateForLatency([{ root: 1, size: 32, multiple: 8, scores: flat(32) }, { root: 2, size: 64, multiple: 16, scores: flat(64) }], tables, { restMs: 3, scale: 1 }, 7.5);
    expect(r.reached).toBe(true);
    expect(r.predictedMs).toBeLessThanOrEqual(7.5);
    expect(r.kept.get(1)! % 8).toBe(0);
    expect(r.kept.get(2)! % 16).toBe(0);
    // one step less would not have fitted
    const last = r.steps.at(-2)?.ms ?? 10;
    expect(last).toBeGreaterThan(7.5);
  });

  it('takes channels where they cost the least importance per millisecond saved', () => {
    // group 2's channels are worth little, group 1's a lot: the budget is met from group 2
    const r = allocateForLatency([{ root: 1, size: 32, multiple: 8, scores: flat(32, 10) }, { root: 2, size: 64, multiple: 16, scores: flat(64, 0.1) }], tables, { restMs: 3, scale: 1 }, 8);
    expect(r.kept.get(1)).toBe(32);
    expect(r.kept.get(2)!).toBeLessThan(64);
  });

  it('says when the budget cannot be reached', () => {
    const r = allocateForLatency([{ root: 1, size: 32, multiple: 16, scores: flat(32) }], tables, { restMs: 3, scale: 1 }, 1);
    expect(r.reached).toBe(false);
    // down to the smallest width (the halvings of 16 included)
    expect(r.kept.get(1)).toBe(1);
  });
});

describe('the correction loop of a latency target', () => {
  const attempt = (budgetMs: number, speedup: number, kept: string, reached = true) => ({ budgetMs, speedup, kept, reached });
  it('stops when the measured speedup meets the target', () => {
    expect(nextCorrection([attempt(5, 2.1, 'a')], 2).kind).toBe('met');
  });
  it('loosens the budget when the measurement overshot the target, and ships the attempt that met it with the most MACs', () => {
    expect(nextCorrection([attempt(5, 3, 'a')], 2)).toEqual({ kind: 'correct', budgetMs: 7.5 });
    expect(nextCorrection([attempt(5, 3, 'a'), attempt(7.5, 2.1, 'b')], 2).kind).toBe('met');
    expect(shippedAttempt([{ speedup: 3, macs: 10 }, { speedup: 2.1, macs: 20 }, { speedup: 1.8, macs: 30 }], 2)).toBe(1);
    expect(shippedAttempt([{ speedup: 1.5, macs: 10 }, { speedup: 1.8, macs: 20 }], 2)).toBe(1);
  });

  it('bisects between the loosest budget that met the target and the tightest that fell short', () => {
    // 5 ms met at 2.4x, 6 ms fell short at 1.8x: the proportional 5.4 lies between them and is kept
    expect(nextCorrection([attempt(5, 2.4, 'a'), attempt(6, 1.8, 'b')], 2)).toEqual({ kind: 'correct', budgetMs: 5.4 });
    // 6 ms short at 1.5x would ask for 4.5 ms, below the 5 ms that met: the midpoint instead
    expect(nextCorrection([attempt(5, 2.4, 'a'), attempt(6, 1.5, 'b')], 2)).toEqual({ kind: 'correct', budgetMs: 5.5 });
  });

  it('tightens the budget by the measured shortfall', () => {
    const c = nextCorrection([attempt(5, 1.6, 'a')], 2);
    expect(c).toEqual({ kind: 'correct', budgetMs: 4 });
  });
  it('tightens again when a tighter budget changed nothing; stops when the allocation bottomed out and after the last correction', () => {
    // 4 ms chose 5 ms's channels: the next budget goes below 4 ms by the shortfall again
    expect(nextCorrection([attempt(5, 1.6, 'a'), attempt(4, 1.6, 'a')], 2)).toEqual({ kind: 'correct', budgetMs: 3.2 });
    // a shortfall of 0.5% that repeated channels steps down 5%, not 0.5%
    expect((nextCorrection([attempt(5, 1.99, 'a'), attempt(4.98, 1.99, 'a')], 2) as { budgetMs: number }).budgetMs).toBeCloseTo(4.98 * 0.95);
    expect(nextCorrection([attempt(5, 1.6, 'a'), attempt(4, 1.6, 'b'), attempt(3.2, 1.6, 'c'), attempt(2.6, 1.6, 'c')], 2, 3)).toMatchObject({ kind: 'stop', reason: 'unchanged' });
    expect(nextCorrection([attempt(5, 1.6, 'a', false)], 2)).toMatchObject({ kind: 'stop', reason: 'unreachable' });
    const four = [attempt(5, 1.5, 'a'), attempt(4, 1.6, 'b'), attempt(3.5, 1.7, 'c'), attempt(3.2, 1.8, 'd')];
    expect(nextCorrection(four, 2, 3)).toMatchObject({ kind: 'stop', reason: 'limit' });
  });
  it('a cut that swung past the target, short of it and past again is corrected once more, inside the bracket', () => {
    // budgets and speedups of a --target-speedup 2x run on the fixture ResNet at batch 1
    const swings = [attempt(0.16, 3.38, 'a'), attempt(0.271, 1.46, 'b'), attempt(0.198, 2.51, 'c'), attempt(0.249, 1.87, 'd')];
    const next = nextCorrection(swings, 2);
    expect(next.kind).toBe('correct');
    const budget = (next as { budgetMs: number }).budgetMs;
    expect(budget).toBeGreaterThan(0.198);
    expect(budget).toBeLessThan(0.249);
  });
  it('an overshoot that chose channels tried before still bisects while a budget that met and one that fell short bracket the target', () => {
    // attempt 5 chose attempt 3's channels again; between 0.165 ms (met) and 0.175 ms (short) other channels remain
    const runs = [attempt(0.125, 3.01, 'a'), attempt(0.188, 1.72, 'b'), attempt(0.162, 2.4, 'c'), attempt(0.175, 1.88, 'd'), attempt(0.165, 2.43, 'c')];
    const next = nextCorrection(runs, 2);
    expect(next.kind).toBe('correct');
    expect((next as { budgetMs: number }).budgetMs).toBeGreaterThan(0.165);
    expect((next as { budgetMs: number }).budgetMs).toBeLessThan(0.175);
    // with no bracket, the same repetition is met (past the target) or stops (short of it)
    expect(nextCorrection([attempt(0.125, 3.01, 'a'), attempt(0.2, 3.01, 'a')], 2).kind).toBe('met');
  });
  it('always ends: repeated shortfalls run out of corrections', () => {
    const attempts = [attempt(5, 1.5, 'k0')];
    let c = nextCorrection(attempts, 2);
    while (c.kind === 'correct') {
      attempts.push(attempt(c.budgetMs, 1.5, `k${attempts.length}`));
      c = nextCorrection(attempts, 2);
    }
    expect(attempts.length).toBe(MAX_CORRECTIONS + 1);
  });
});

describe('allocation under a latency budget weighed by measured loss curves', () => {
  const tables = [bilinear('a', undefined, 1, 3, 32, 2), bilinear('b', 1, 2, 32, 64, 4), bilinear('c', 2, undefined, 64, 10, 1)];
  it('a measured cost overrides magnitude: the group whose loss curve is flat gives up its channels', () => {
    const groups = [{ root: 1, size: 32, multiple: 8, scores: new Float64Array(32).fill(0.1) }, { root: 2, size: 64, multiple: 16, scores: new Float64Array(64).fill(10) }];
    // by magnitude group 1 goes first; its measured loss says otherwise
    const byMagnitude = allocateForLatency(groups, tables, { restMs: 3, scale: 1 }, 8);
    expect(byMagnitude.kept.get(1)!).toBeLessThan(32);
    const byLoss = allocateForLatency(groups, tables, { restMs: 3, scale: 1 }, 8, (root, from, to) => (root === 1 ? (from - to) * 1 : (from - to) * 0.001));
    expect(byLoss.kept.get(1)).toBe(32);
    expect(byLoss.kept.get(2)!).toBeLessThan(64);
  });
});

describe('how evenly a latency allocation may cut', () => {
  const tables = [bilinear('a', undefined, 1, 3, 32, 2), bilinear('b', 1, 2, 32, 64, 4), bilinear('c', 2, undefined, 64, 10, 1)];
  const dense = { restMs: 3, scale: 1 };
  // group 2's channels look nearly free: uncapped, the cut goes there first
  const groups = [{ root: 1, size: 32, multiple: 8, scores: new Float64Array(32).fill(10) }, { root: 2, size: 64, multiple: 16, scores: new Float64Array(64).fill(0.1) }];
  const cheap2 = (root: number, from: number, to: number) => (root === 1 ? from - to : (from - to) * 0.01);

  it('no group loses more than the cap, and the tightest cap that reaches the budget spreads the cut', () => {
    const budget = 6.5;
    const free = allocateForLatency(groups, tables, dense, budget, cheap2);
    expect(free.reached).toBe(true);
    expect(free.kept.get(2)!).toBeLessThanOrEqual(16);
    const even = evenCap(groups, tables, dense, budget);
    expect(even).toBeGreaterThan(0);
    expect(even).toBeLessThan(1);
    for (const evenness of [0.5, 1]) {
      const cap = capAtEvenness(evenness, even);
      const r = allocateForLatency(groups.map((g) => ({ ...g, minKept: capFloor(g.size, cap) })), tables, dense, budget, cheap2);
      expect(r.reached).toBe(true);
      expect(r.predictedMs).toBeLessThanOrEqual(budget);
      for (const g of groups) expect(r.kept.get(g.root)!).toBeGreaterThanOrEqual(capFloor(g.size, cap));
    }
    // at the even cap both groups give up channels; a tighter cap cannot reach the budget
    const atEven = allocateForLatency(groups.map((g) => ({ ...g, minKept: capFloor(g.size, even) })), tables, dense, budget, cheap2);
    expect(atEven.kept.get(1)!).toBeLessThan(32);
    expect(atEven.kept.get(2)!).toBeGreaterThan(free.kept.get(2)!);
    expect(allocateForLatency(groups.map((g) => ({ ...g, minKept: capFloor(g.size, even * 0.8) })), tables, dense, budget, cheap2).reached).toBe(false);
    // a budget no cap reaches: the loosest cap
    expect(evenCap(groups, tables, dense, 0.1, 0.9)).toBe(0.9);
  });

  it('a uniform cut takes the same fraction from every group: the smallest that reaches the budget', () => {
    // the layer-scope allocation at a fraction, rounded down to each group's multiple
    const keptAt = (f: number) => new Map(groups.map((g) => [g.root, Math.max(g.multiple, Math.floor((g.size * (1 - f)) / g.multiple) * g.multiple)]));
    const budget = 6.5;
    const r = uniformForLatency(keptAt, tables, dense, budget);
    expect(r.reached).toBe(true);
    expect(r.predictedMs).toBeLessThanOrEqual(budget);
    expect([...r.kept]).toEqual([...keptAt(r.fraction)]);
    // one percent less would not have fitted, and nothing was weighed by costs: group 1 gives up channels too
    expect(predictMs(tables, dense.restMs, keptAt(r.fraction - 0.01), dense.scale)).toBeGreaterThan(budget);
    expect(r.kept.get(1)!).toBeLessThan(32);
    // out of reach under the cap: the cap's cut, said so
    const capped = uniformForLatency(keptAt, tables, dense, 0.1, 0.5);
    expect(capped).toMatchObject({ reached: false, fraction: 0.5 });
  });

  it('gives back the slack a coarse last step left: no group could keep one width more within the budget', () => {
    for (const budget of [9, 8, 7.2, 6.5, 5.5]) {
      const r = allocateForLatency(groups, tables, dense, budget, cheap2);
      expect(r.reached).toBe(true);
      for (const g of groups) {
        const list = allowedWidths(g.size, g.multiple);
        const k = r.kept.get(g.root)!;
        if (k === g.size) continue;
        const up = new Map(r.kept).set(g.root, list[list.indexOf(k) + 1]);
        expect(predictMs(tables, dense.restMs, up, dense.scale)).toBeGreaterThan(budget);
      }
    }
  });
});
