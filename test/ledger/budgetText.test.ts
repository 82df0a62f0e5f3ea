import { describe, expect, it } from 'vitest';
import { budgetPhrase, limitText, marginText, valueText, whyText } from '../../src/ledger/budgetText.js';
import type { BudgetResult } from '../../src/ledger/types.js';

const budget = (o: Partial<BudgetResult>): BudgetResult => ({ name: 'accuracy-drop', limit: 0.01, actual: 0.022000000000000002, verdict: 'fail', direction: 'max', source: 'config', detail: '', ...o });

describe('a budget in words', () => {
  it('shows the limit as written when it carries a unit, else in the budget\'s natural unit', () => {
    expect(limitText(budget({ written: '0.5pt', limit: 0.005 }))).toBe('≤ 0.5pt');
    expect(limitText(budget({ written: '0.005', limit: 0.005 }))).toBe('≤ 0.5 pt');
    expect(limitText(budget({ name: 'max-size-bytes', limit: 2_000_000 }))).toBe('≤ 2 MB');
    expect(limitText(budget({ name: 'min-speedup', limit: 1.3, direction: 'min' }))).toBe('≥ 1.3x');
    expect(limitText(budget({ name: 'p95-latency-ms', limit: 12.5 }))).toBe('≤ 12.5 ms');
    expect(limitText(budget({ name: 'latency-regression', limit: 0.05 }))).toBe('≤ 5%');
  });

  it('gives value and margin in the limit\'s unit, with no raw float', () => {
    const b = budget({});
    expect([valueText(b), marginText(b), budgetPhrase(b)]).toEqual(['2.20 pt', '1.20 pt over', 'accuracy-drop 2.20 pt > 1 pt']);
    const speed = budget({ name: 'min-speedup', limit: 100, actual: 0.99, direction: 'min' });
    expect([valueText(speed), marginText(speed), budgetPhrase(speed, 'dense → pruned')]).toEqual(['0.99x', '99.01x short', 'min-speedup 0.99x < 100x']);
    const slower = budget({ name: 'latency-regression', limit: 0.05, actual: 0.131 });
    expect([valueText(slower), marginText(slower), budgetPhrase(slower, 'base → head')]).toEqual(['+13.1%', '8.1 pt over', 'latency-regression vs base +13.1% > 5%']);
    expect(marginText(budget({ actual: 0.004, verdict: 'pass' }))).toBe('0.60 pt to spare');
    // a share of the requested reduction is no change: no sign
    const share = budget({ name: 'target-reduction', limit: 0.75, actual: 0.5, direction: 'min', verdict: 'warn', written: '75%' });
    expect([limitText(share), valueText(share), marginText(share)]).toEqual(['≥ 75%', '50.0%', '25.0 pt short']);
  });

  it('explains a close call and drops a runner\'s absolute path', () => {
    const warn = budget({ actual: 0.009, verdict: 'warn', ci: [0.004, 0.014], confidence: 0.95, p_value: 0.2, detail: '90.00% → 89.10%; interval straddles the limit' });
    expect(whyText(warn)).toBe('its interval [0.40 pt, 1.40 pt] 95% reaches across the limit: too close to call; 90.00% → 89.10%; p=0.200');
    expect(budgetPhrase(warn)).toBe('accuracy-drop 0.90 pt, too close to the ≤ 1 pt limit to call');
    expect(whyText(budget({ name: 'class-accuracy-drop', detail: 'class 3: 90.00% → 80.00%; read /home/runner/work/r/data/test.npz' }))).toBe('class 3: 90.00% → 80.00%; read test.npz');
  });

  it('lets an undecided latency decision say itself why, with the runner\'s noise', () => {
    const detail = 'p50 1.00 ms → 1.04 ms at batch 32; could not decide: noise ±12.0% on this runner; interval [+1.0%, +7.0%] still straddles the 5.0% limit at the time cap, after 250 interleaved rounds (4 of 7 looks)';
    const sequential = { outcome: 'undecided' as const, stopped: 'time-cap' as const, rounds: 250, looks: 4, planned_looks: 7, look_alpha: 0.0063, estimate: 0.04, ci: [0.01, 0.07] as [number, number], noise: 0.12, half_width: 0.03 };
    const warn = budget({ name: 'latency-regression', limit: 0.05, actual: 0.04, verdict: 'warn', ci: [0.01, 0.07], confidence: 0.95, detail, sequential });
    expect(whyText(warn)).toBe(detail);
    // strict mode turns it into a fail, and the comment says so
    expect(whyText({ ...warn, verdict: 'fail' })).toMatch(/^its interval .* reaches across the limit: too close to call \(strict mode fails it\); p50/);
  });
});
