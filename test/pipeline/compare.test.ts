import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type Config } from '../../src/config/schema.js';
import { resolveBudgets } from '../../src/ledger/budgets.js';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { compareBudgets, comparePipeline } from '../../src/pipeline/compare.js';
import { silentProgress } from '../../src/io/progress.js';
import { runGuarded } from '../../src/pipeline/guardedRun.js';
import { renderSelftest, selftest } from '../../src/pipeline/selftest.js';
import { fixture, tempDir } from '../support/fixtures.js';

const config: Config = { ...structuredClone(DEFAULT_CONFIG), batchSizes: [4], latency: { warmup: 1, runs: 5, threads: 1, targetRelCi: 0, maxSeconds: 0, maxRuns: 400, repeat: 1 } };

describe('compare: a model against itself (A/A)', () => {
  const out = tempDir();
  let ledger: Ledger;
  beforeAll(async () => {
    const budgets = resolveBudgets({}, []);
    ledger = (await comparePipeline({ base: fixture('mlp.onnx'), head: fixture('mlp.onnx'), data: fixture('fmnist-calib.npz'), shifts: [{ name: 'rotate', path: fixture('fmnist-shift-rotate.npz') }], out, config: { ...config, corruptions: ['gaussian-noise:2', 'blur:1'] }, budgets }, silentProgress)).ledger;
  }, 60_000);

  it('writes a schema-valid ledger with steps base and head', () => {
    expect(validateLedger(ledger)).toEqual([]);
    expect(ledger.models[0].steps.map((s) => s.name)).toEqual(['base', 'head']);
    expect(fs.existsSync(path.join(out, 'ledger.md'))).toBe(true);
  });

  it('judges accuracy on the paired interval: no discordant sample, p = 1, a narrow interval around 0', () => {
    const acc = ledger.models[0].budgets.find((b) => b.name === 'accuracy-drop')!;
    expect(acc.actual).toBe(0);
    expect(acc.p_value).toBe(1);
    expect(acc.ci![0]).toBeLessThan(0);
    expect(acc.ci![1]).toBeGreaterThan(0);
    expect(acc.ci![1]).toBeLessThan(0.01);
    expect(acc.verdict).toBe('pass');
    expect(acc.confidence).toBe(0.95);
  });

  it('always checks latency-regression with an interval, and shows the interval in the markdown', () => {
    const lat = ledger.models[0].budgets.find((b) => b.name === 'latency-regression')!;
    expect(lat.limit).toBe(0.05);
    // the estimate is 1/speedup - 1 and the interval's ends slowdown - 1: equal up to rounding
    expect(lat.ci![0]).toBeLessThanOrEqual(lat.actual! + 1e-12);
    expect(lat.ci![1]).toBeGreaterThanOrEqual(lat.actual! - 1e-12);
    // the row in the model's budget table: limit, the change in percent, then its interval beneath it
    const md = fs.readFileSync(path.join(out, 'ledger.md'), 'utf8').replace(/\u00a0/g, ' ').replace(/\u2011/g, '-');
    expect(md).toMatch(/`latency-regression`<br><sub>base → head<\/sub> \| ≤ 5% \| [+−]?\d+\.\d%<br><sub>\[[+−]?\d+\.\d%, [+−]?\d+\.\d%\] 95%<\/sub> \|/);
  });

  it('samples latency until it decides, never failing a model against itself: pass, or warn with the noise at a cap', () => {
    const lat = ledger.models[0].budgets.find((b) => b.name === 'latency-regression')!;
    const seq = lat.sequential!;
    expect(ledger.verdict).not.toBe('fail');
    expect(lat.verdict).not.toBe('fail');
    expect(seq.outcome).not.toBe('beyond');
    expect(seq.rounds).toBe(ledger.models[0].steps[0].latency!.runs);
    expect(seq.rounds).toBeLessThanOrEqual(400);
    expect(seq.noise).toBeGreaterThan(0);
    if (seq.outcome === 'within') expect(lat.detail).toMatch(/within the 5\.0% limit: interval \[.*\] wholly below it after \d+ interleaved rounds/);
    else expect(lat.detail).toMatch(/could not decide: noise ±\d+\.\d% on this runner/);
  });

  it('evaluates the user shift set and the built-in corruptions on both models', () => {
    expect(Object.keys(ledger.models[0].steps[1].shift_accuracy!)).toEqual(['rotate', 'gaussian-noise:2', 'blur:1']);
    expect(ledger.models[0].shifts!.map((s) => [s.name, s.source, s.drop])).toEqual([['rotate', 'user', 0], ['gaussian-noise:2', 'corruption', 0], ['blur:1', 'corruption', 0]]);
    expect(ledger.models[0].steps[0].shift_accuracy!.rotate).toBe(ledger.models[0].steps[1].shift_accuracy!.rotate);
  });

  it('records Wilson intervals of accuracy on each step', () => {
    const s = ledger.models[0].steps[0];
    expect(s.accuracy_ci![0]).toBeLessThan(s.accuracy!);
    expect(s.accuracy_ci![1]).toBeGreaterThan(s.accuracy!);
    expect(s.per_class_ci).toHaveLength(10);
  });
});

describe('run with a user shift set and two built-in corruptions', () => {
  it('shows accuracy, drop with interval and the gap change on every set', async () => {
    const out = tempDir();
    const budgets = resolveBudgets({ 'shift-accuracy-drop': { limit: 0.05, written: '5pt' } }, []);
    const r = await runGuarded(
      { model: fixture('mlp.onnx'), data: fixture('fmnist-calib.npz'), shifts: [{ name: 'rotate', path: fixture('fmnist-shift-rotate.npz') }], out, budgets, config: { ...config, sparsity: 0.8, corruptions: ['gaussian-noise:3', 'contrast:4'] } },
      silentProgress,
    );
    const m = r.ledger.models[0];
    expect(validateLedger(r.ledger)).toEqual([]);
    expect(m.shifts!.map((s) => `${s.name}/${s.source}`)).toEqual(['rotate/user', 'gaussian-noise:3/corruption', 'contrast:4/corruption']);
    const clean = m.steps[0].accuracy! - m.steps[1].accuracy!;
    for (const s of m.shifts!) {
      expect(s.drop).toBeCloseTo(s.dense - s.final, 12);
      expect(s.gap_change).toBeCloseTo(s.drop - clean, 12);
      expect(s.drop_ci![0]).toBeLessThanOrEqual(s.drop);
      expect(s.drop_ci![1]).toBeGreaterThanOrEqual(s.drop);
    }
    // the corruption really shifts the data: the dense model is less accurate on it
    expect(m.shifts![1].dense).toBeLessThan(m.steps[0].accuracy!);
    // the budget judges the worst set: its interval is the per-set drop intervals' upper envelope, around the worst drop
    const budget = m.budgets.find((b) => b.name === 'shift-accuracy-drop')!;
    expect(budget.ci).toEqual([Math.max(...m.shifts!.map((s) => s.drop_ci![0])), Math.max(...m.shifts!.map((s) => s.drop_ci![1]))]);
    expect(budget.actual).toBe(Math.max(...m.shifts!.map((s) => s.drop)));
    expect(budget.ci![0]).toBeLessThanOrEqual(budget.actual!);
    expect(budget.ci![1]).toBeGreaterThanOrEqual(budget.actual!);
    expect(r.markdown).toContain('**Distribution shift**');
    expect(r.markdown).toContain('| gaussian-noise:3 | corruption |');
  }, 60_000);
});

describe('a shift set without labels', () => {
  it('gets prediction-distribution tests (KS, PSI, chi-square) but no accuracy', async () => {
    const { writeNpz } = await import('../../src/data/npz.js');
    const { readArrays } = await import('../../src/data/npz.js');
    const dir = tempDir();
    const x = readArrays(fixture('fmnist-shift-rotate.npz')).get('x')!;
    const unlabelled = path.join(dir, 'unlabelled.npz');
    writeNpz(unlabelled, { x });
    const r = await comparePipeline(
      { base: fixture('mlp.onnx'), head: fixture('mlp.onnx'), data: fixture('fmnist-calib.npz'), shifts: [{ name: 'wild', path: unlabelled }], out: tempDir(), config: { ...config, corruptions: ['contrast:5'] }, budgets: resolveBudgets({}, []) },
      silentProgress,
    );
    const m = r.ledger.models[0];
    expect(validateLedger(r.ledger)).toEqual([]);
    expect(m.shifts!.map((s) => s.name)).toEqual(['contrast:5']);
    expect(m.steps[0].shift_accuracy).toEqual({ 'contrast:5': expect.any(Number) });
    const wild = m.prediction_shift!.find((s) => s.name === 'wild')!;
    expect(wild.labelled).toBe(false);
    expect(wild.samples).toBe(x.shape[0]);
    // rotated images really move the predictions of the model
    expect(wild.dense.chi2_p).toBeLessThan(0.01);
    expect(wild.dense).toEqual(wild.final);
    expect(r.markdown).toContain('**Prediction shift vs clean data**');
  }, 60_000);
});

describe('compare budgets', () => {
  it('keeps a configured latency-regression limit and adds the default otherwise', () => {
    expect(compareBudgets(resolveBudgets({}, [])).map((b) => b.name)).toEqual(['accuracy-drop', 'class-accuracy-drop', 'ece-increase', 'latency-regression']);
    expect(compareBudgets(resolveBudgets({ 'latency-regression': { limit: 0.2, written: '20%' } }, [])).find((b) => b.name === 'latency-regression')!.limit).toBe(0.2);
  });
});

describe('selftest', () => {
  it('reports the A/A false-alarm rate and the detectable change', async () => {
    const out = tempDir();
    const r = await selftest({ model: fixture('mlp.onnx'), data: fixture('fmnist-calib.npz'), repetitions: 3, config, budgets: resolveBudgets({}, []), out }, silentProgress);
    expect(r.repetitions).toBe(3);
    expect(r.false_alarm_rate).toBe(r.false_alarms / 3);
    expect(r.min_detectable_change).toBeCloseTo(2 * r.latency_ci_half_width.median, 12);
    expect(r.reliably_failed_slowdown).toBeCloseTo(0.05 + r.min_detectable_change, 12);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'selftest.json'), 'utf8')).repetitions).toBe(3);
    expect(renderSelftest(r)).toContain('smallest latency change this runner can detect');
  }, 60_000);
});
