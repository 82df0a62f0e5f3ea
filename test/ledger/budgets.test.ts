import { describe, expect, it } from 'vitest';
import { evaluateBudgets, intervalVerdict, overallVerdict, resolveBudgets, type BudgetMeasurements, type ResolvedBudget } from '../../src/ledger/budgets.js';
import { BUDGETS } from '../../src/config/budgets.js';
import type { BudgetName, BudgetResult } from '../../src/ledger/types.js';
import { sampleLedger, sampleModel, step } from './fixtures.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';

describe('resolveBudgets', () => {
  it('takes a flag over the config over the default, and records the source', () => {
    const resolved = resolveBudgets(
      { 'accuracy-drop': { limit: 0.02, written: '2pt', set_at: 'pg.yml:3' }, 'class-accuracy-drop': { limit: 0.04, written: '4%', set_at: 'pg.yml:4' } },
      [{ name: 'accuracy-drop', limit: 0.03, written: '3pt', set_at: '--budget' }],
    );
    expect(resolved.slice(0, 3)).toEqual([
      { name: 'accuracy-drop', limit: 0.03, direction: 'max', source: 'flag', written: '3pt', set_at: '--budget' },
      { name: 'class-accuracy-drop', limit: 0.04, direction: 'max', source: 'config', written: '4%', set_at: 'pg.yml:4' },
      { name: 'ece-increase', limit: 0.02, direction: 'max', source: 'default' },
    ]);
  });

  it('leaves out budgets without a default unless set, in table order', () => {
    const names = resolveBudgets({ 'max-size-bytes': { limit: 1000, written: '1000' } }, [{ name: 'min-speedup', limit: 1.2, written: '1.2x' }]).map((b) => b.name);
    expect(names).toEqual(['accuracy-drop', 'class-accuracy-drop', 'ece-increase', 'min-speedup', 'max-size-bytes', 'target-reduction']);
  });

  it('carries the limit as written and where it was set into every verdict, and leaves them out for defaults', () => {
    const resolved = resolveBudgets({ 'max-size-bytes': { limit: 2_097_152, written: '2MiB', set_at: 'pg.yml:4' } }, [{ name: 'min-speedup', limit: 1.3, written: '1.3x', set_at: '--budget' }]);
    const m = { dense: step(), final: step({ size_bytes: 3_000_000, latency: { batch: 1, p50_ms: 0.21, p95_ms: 0.3, runs: 30 } }) };
    const results = evaluateBudgets(resolved, m);
    expect(results.find((b) => b.name === 'max-size-bytes')).toMatchObject({ verdict: 'fail', limit: 2_097_152, written: '2MiB', set_at: 'pg.yml:4', source: 'config' });
    expect(results.find((b) => b.name === 'min-speedup')).toMatchObject({ verdict: 'pass', written: '1.3x', set_at: '--budget', source: 'flag' });
    const fallback = results.find((b) => b.name === 'accuracy-drop')!;
    expect('written' in fallback || 'set_at' in fallback).toBe(false);
    const ledger = { ...sampleLedger(), models: [{ ...sampleModel(), budgets: results }] };
    expect(validateLedger(ledger)).toEqual([]);
    expect(validateLedger({ ...ledger, models: [{ ...sampleModel(), budgets: [{ ...results[0], written: 2 }] }] })).not.toEqual([]);
  });

  it('lets the last of repeated flags win', () => {
    const [first] = resolveBudgets({}, [
      { name: 'accuracy-drop', limit: 0.1, written: '10pt' },
      { name: 'accuracy-drop', limit: 0.2, written: '20pt' },
    ]);
    expect(first.limit).toBe(0.2);
  });
});

function check(name: BudgetName, limit: number, m: BudgetMeasurements): BudgetResult {
  const budget: ResolvedBudget = { name, limit, direction: BUDGETS[name].direction, source: 'config' };
  return evaluateBudgets([budget], m)[0];
}

describe('evaluateBudgets metrics', () => {
  const dense = step();

  it('accuracy-drop is dense minus final accuracy', () => {
    const m = { dense, final: step({ accuracy: 0.872 }) };
    expect(check('accuracy-drop', 0.03, m)).toMatchObject({ actual: expect.closeTo(0.02, 12), verdict: 'pass' });
    expect(check('accuracy-drop', 0.01, m)).toMatchObject({ verdict: 'fail', detail: '89.20% → 87.20%', source: 'config' });
  });

  it('passes a drop equal to the limit despite float noise', () => {
    // 0.91 - 0.9 = 0.010000000000000009 in floating point
    const result = check('accuracy-drop', 0.01, { dense: step({ accuracy: 0.91 }), final: step({ accuracy: 0.9 }) });
    expect(result.verdict).toBe('pass');
  });

  it('class-accuracy-drop is the largest drop of any class and names it', () => {
    const m = { dense, final: step({ per_class: [0.88, 0.8, 0.82] }) };
    const result = check('class-accuracy-drop', 0.05, m);
    expect(result.actual).toBeCloseTo(0.15, 12);
    expect(result.verdict).toBe('fail');
    expect(result.detail).toBe('class 1: 95.00% → 80.00%');
  });

  it('class-accuracy-drop skips classes without samples', () => {
    const m = { dense: step({ per_class: [0.9, null, 0.8] }), final: step({ per_class: [0.89, 0.1, null] }) };
    expect(check('class-accuracy-drop', 0.05, m)).toMatchObject({ actual: expect.closeTo(0.01, 12), verdict: 'pass' });
  });

  it('ece-increase is final minus dense ECE', () => {
    const result = check('ece-increase', 0.02, { dense, final: step({ ece: 0.06 }) });
    expect(result.actual).toBeCloseTo(0.03, 12);
    expect(result.verdict).toBe('fail');
  });

  it('min-speedup is dense p50 over final p50 and must stay at or above the limit', () => {
    const final = step({ latency: { batch: 1, p50_ms: 0.21, p95_ms: 0.3, runs: 30 } });
    const result = check('min-speedup', 1.5, { dense, final });
    expect(result).toMatchObject({ actual: expect.closeTo(2, 12), verdict: 'pass', direction: 'min' });
    expect(check('min-speedup', 2.5, { dense, final }).verdict).toBe('fail');
  });

  it('latency-regression is final p50 over base p50 minus one', () => {
    const base = step({ latency: { batch: 1, p50_ms: 0.4, p95_ms: 0.5, runs: 30 } });
    const final = step({ latency: { batch: 1, p50_ms: 0.5, p95_ms: 0.6, runs: 30 } });
    const result = check('latency-regression', 0.1, { dense, final, base });
    expect(result.actual).toBeCloseTo(0.25, 12);
    expect(result.verdict).toBe('fail');
  });

  it('p95-latency-ms is the final p95', () => {
    const result = check('p95-latency-ms', 1, { dense, final: step({ latency: { batch: 1, p50_ms: 1, p95_ms: 1.4, runs: 30 } }) });
    expect(result).toMatchObject({ actual: 1.4, verdict: 'fail' });
  });

  it('max-size-bytes is the final file size', () => {
    expect(check('max-size-bytes', 500_000, { dense, final: step({ size_bytes: 400_000 }) })).toMatchObject({
      actual: 400_000,
      verdict: 'pass',
    });
  });

  it('shift-accuracy-drop is the largest drop over shift sets and names it', () => {
    const m = {
      dense: step({ shift_accuracy: { rotate: 0.7, noise: 0.8 } }),
      final: step({ shift_accuracy: { rotate: 0.6, noise: 0.79 } }),
    };
    const result = check('shift-accuracy-drop', 0.05, m);
    expect(result.actual).toBeCloseTo(0.1, 12);
    expect(result.verdict).toBe('fail');
    expect(result.detail).toBe('rotate: 70.00% → 60.00%');
  });
});

describe('evaluateBudgets when something was not measured', () => {
  const dense = step();

  it.each<[BudgetName, BudgetMeasurements, string]>([
    ['accuracy-drop', { dense, final: step({ accuracy: null }) }, 'not measured: final accuracy was not evaluated'],
    ['class-accuracy-drop', { dense: step({ per_class: null }), final: step() }, 'not measured: dense per-class accuracy was not evaluated'],
    ['ece-increase', { dense, final: step({ ece: null }) }, 'not measured: final ECE was not evaluated'],
    ['min-speedup', { dense, final: step({ latency: null }) }, 'not measured: final latency was not measured'],
    ['latency-regression', { dense, final: step() }, 'not measured: no base model to compare against (compare mode only)'],
    ['p95-latency-ms', { dense, final: step({ latency: null }) }, 'not measured: final latency was not measured'],
    ['shift-accuracy-drop', { dense, final: step() }, 'not measured: no shift set was evaluated on both dense and final'],
  ])('%s gives warn with a null actual and the reason', (name, m, detail) => {
    expect(check(name, 0.5, m)).toMatchObject({ actual: null, verdict: 'warn', detail });
  });

  it('warns when latencies were taken at different batch sizes', () => {
    const final = step({ latency: { batch: 32, p50_ms: 1, p95_ms: 2, runs: 30 } });
    expect(check('min-speedup', 1, { dense, final })).toMatchObject({
      actual: null,
      verdict: 'warn',
      detail: 'not measured: dense latency is at batch 1 but final at batch 32',
    });
  });

  it('warns instead of passing when only some shift sets were measured', () => {
    const m = {
      dense: step({ shift_accuracy: { rotate: 0.7, noise: 0.8 } }),
      final: step({ shift_accuracy: { rotate: 0.7 } }),
    };
    expect(check('shift-accuracy-drop', 0.05, m)).toMatchObject({
      actual: 0,
      verdict: 'warn',
      detail: 'rotate: 70.00% → 70.00%; not measured: final was not evaluated on noise',
    });
  });

  it('warns on a non-finite result such as a zero latency', () => {
    const final = step({ latency: { batch: 1, p50_ms: 0, p95_ms: 0, runs: 30 } });
    expect(check('min-speedup', 1, { dense, final })).toMatchObject({ actual: null, verdict: 'warn' });
  });
});

describe('overallVerdict', () => {
  it('is the worst verdict: fail over warn over pass', () => {
    expect(overallVerdict(['pass', 'warn', 'fail', 'pass'])).toBe('fail');
    expect(overallVerdict(['pass', 'warn'])).toBe('warn');
    expect(overallVerdict(['pass', 'pass'])).toBe('pass');
    expect(overallVerdict([])).toBe('pass');
  });
});

describe('verdicts on intervals', () => {
  const acc = (dense: number, final: number) => ({ dense: step({ accuracy: dense }), final: step({ accuracy: final }) });
  const budget: ResolvedBudget = { name: 'accuracy-drop', limit: 0.01, direction: 'max', source: 'default' };
  const judge = (ci: [number, number], strict = false) =>
    evaluateBudgets([budget], { ...acc(0.9, 0.895), uncertainty: { 'accuracy-drop': { ci, p_value: 0.2 } } }, { strict, confidence: 0.95 })[0];

  it('passes when the whole interval is within the limit', () => {
    const r = judge([-0.002, 0.009]);
    expect(r.verdict).toBe('pass');
    expect(r.ci).toEqual([-0.002, 0.009]);
    expect(r.confidence).toBe(0.95);
    expect(r.p_value).toBe(0.2);
    expect(r.actual).toBeCloseTo(0.005, 12); // the point estimate stays in `actual`
  });
  it('warns when the interval straddles the limit, fails in strict mode', () => {
    expect(judge([0.001, 0.02]).verdict).toBe('warn');
    expect(judge([0.001, 0.02]).detail).toContain('straddles');
    expect(judge([0.001, 0.02], true).verdict).toBe('fail');
    expect(judge([0.001, 0.02], true).detail).toContain('strict');
  });
  it('fails only when the whole interval lies beyond the limit', () => {
    expect(judge([0.011, 0.03]).verdict).toBe('fail');
  });
  it('mirrors for min budgets', () => {
    expect(intervalVerdict('min', [1.6, 1.9], 1.5)).toBe('pass');
    expect(intervalVerdict('min', [1.4, 1.9], 1.5)).toBe('warn');
    expect(intervalVerdict('min', [1.1, 1.4], 1.5)).toBe('fail');
    expect(intervalVerdict('min', [1.4, 1.9], 1.5, true)).toBe('fail');
  });
  it('judges the point value when no interval is given', () => {
    expect(evaluateBudgets([budget], acc(0.9, 0.895))[0].ci).toBeUndefined();
  });
});
