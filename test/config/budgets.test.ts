import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { BUDGETS, BUDGET_NAMES, parseBudgetFlag } from '../../src/config/budgets.js';

describe('BUDGETS table', () => {
  it('has every budget with its direction and the documented defaults', () => {
    expect(BUDGET_NAMES).toEqual([
      'accuracy-drop',
      'class-accuracy-drop',
      'ece-increase',
      'min-speedup',
      'latency-regression',
      'p95-latency-ms',
      'max-size-bytes',
      'shift-accuracy-drop',
      'label-f1-drop',
    ]);
    const defaults = Object.fromEntries(BUDGET_NAMES.map((n) => [n, BUDGETS[n].default]).filter(([, d]) => d !== undefined));
    expect(defaults).toEqual({ 'accuracy-drop': 0.01, 'class-accuracy-drop': 0.05, 'ece-increase': 0.02 });
    expect(BUDGET_NAMES.filter((n) => BUDGETS[n].direction === 'min')).toEqual(['min-speedup']);
  });
});

describe('parseBudgetFlag', () => {
  it('reads a plain fraction', () => {
    expect(parseBudgetFlag('accuracy-drop=0.02')).toEqual({ name: 'accuracy-drop', limit: 0.02 });
  });

  it('turns a percent into a fraction', () => {
    expect(parseBudgetFlag('accuracy-drop=0.5%')).toEqual({ name: 'accuracy-drop', limit: 0.005 });
    expect(parseBudgetFlag('latency-regression=10%').limit).toBeCloseTo(0.1, 12);
  });

  it('reads sizes in decimal and binary units and plain bytes', () => {
    expect(parseBudgetFlag('max-size-bytes=2MB').limit).toBe(2_000_000);
    expect(parseBudgetFlag('max-size-bytes=1.5MiB').limit).toBe(1_572_864);
    expect(parseBudgetFlag('max-size-bytes=300kb').limit).toBe(300_000);
    expect(parseBudgetFlag('max-size-bytes=123456').limit).toBe(123_456);
  });

  it('accepts an x after a speedup and ms after a latency', () => {
    expect(parseBudgetFlag('min-speedup=1.5x').limit).toBe(1.5);
    expect(parseBudgetFlag('p95-latency-ms=12.5ms').limit).toBe(12.5);
  });

  it('suggests the closest name for an unknown budget', () => {
    expect(() => parseBudgetFlag('acuracy-drop=0.01')).toThrow(
      "--budget acuracy-drop=0.01: unknown budget 'acuracy-drop'; did you mean 'accuracy-drop'?",
    );
    expect(() => parseBudgetFlag('acuracy-drop=0.01')).toThrow(UserError);
  });

  it('rejects a value that is not a number of the right kind', () => {
    expect(() => parseBudgetFlag('accuracy-drop=abc')).toThrow(
      `--budget accuracy-drop=abc: 'accuracy-drop' must be a fraction between 0 and 1 like 0.01 or 1% (got "abc")`,
    );
    expect(() => parseBudgetFlag('accuracy-drop=')).toThrow(UserError);
    expect(() => parseBudgetFlag('min-speedup=2MB')).toThrow(UserError);
    expect(() => parseBudgetFlag('max-size-bytes=0x10')).toThrow(UserError);
  });

  it('rejects values outside the valid range', () => {
    expect(() => parseBudgetFlag('accuracy-drop=2')).toThrow(UserError);
    expect(() => parseBudgetFlag('accuracy-drop=-1%')).toThrow(UserError);
    expect(() => parseBudgetFlag('min-speedup=0')).toThrow(UserError);
  });

  it('asks for NAME=VALUE when there is no =', () => {
    expect(() => parseBudgetFlag('accuracy-drop')).toThrow('--budget accuracy-drop: expected NAME=VALUE');
  });
});
