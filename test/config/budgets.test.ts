import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { BUDGETS, BUDGET_NAMES, parseBudgetFlag, readBudget, type BudgetName } from '../../src/config/budgets.js';
import { parseConfig } from '../../src/config/loadConfig.js';
import { readInputs } from '../../src/github/inputs.js';

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
      'target-reduction',
    ]);
    const defaults = Object.fromEntries(BUDGET_NAMES.map((n) => [n, BUDGETS[n].default]).filter(([, d]) => d !== undefined));
    expect(defaults).toEqual({ 'accuracy-drop': 0.01, 'class-accuracy-drop': 0.05, 'ece-increase': 0.02, 'target-reduction': 0.75 });
    expect(BUDGET_NAMES.filter((n) => BUDGETS[n].direction === 'min')).toEqual(['min-speedup', 'target-reduction']);
  });
});

describe('parseBudgetFlag', () => {
  it('reads a plain fraction', () => {
    expect(parseBudgetFlag('accuracy-drop=0.02')).toEqual({ name: 'accuracy-drop', limit: 0.02, written: '0.02', set_at: '--budget' });
  });

  it('turns a percent into a fraction', () => {
    expect(parseBudgetFlag('accuracy-drop=0.5%')).toEqual({ name: 'accuracy-drop', limit: 0.005, written: '0.5%', set_at: '--budget' });
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
      `--budget accuracy-drop=abc: 'accuracy-drop' must be points from 0 to 100 like 0.5pt or 1%, or a fraction below 0.1 like 0.01 (got "abc")`,
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

describe('budget units', () => {
  const reads = (name: BudgetName, text: string | number) => {
    const r = readBudget(name, text);
    return r.ok ? [r.limit, r.written] : r.message ?? 'invalid';
  };

  it.each([
    ['accuracy-drop', '0.5pt', 0.005],
    ['accuracy-drop', '0.5 PT', 0.005],
    ['accuracy-drop', '0.5%', 0.005],
    ['class-accuracy-drop', '3pt', 0.03],
    ['ece-increase', '100pt', 1],
    ['shift-accuracy-drop', '10%', 0.1],
    ['latency-regression', '10%', 0.1],
    ['latency-regression', '0.5', 0.5],
    ['p95-latency-ms', '5ms', 5],
    ['p95-latency-ms', '12.5', 12.5],
    ['max-size-bytes', '2MB', 2_000_000],
    ['max-size-bytes', '2MiB', 2_097_152],
    ['max-size-bytes', '1.5kib', 1536],
    ['max-size-bytes', '2000000', 2_000_000],
    ['min-speedup', '1.3x', 1.3],
    ['min-speedup', '1.3X', 1.3],
  ] as [BudgetName, string, number][])('%s: %s is %d, kept as written', (name, text, limit) => {
    const r = readBudget(name, text);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.limit).toBeCloseTo(limit, 12);
      expect(r.written).toBe(text);
    }
  });

  it('keeps a bare number as written', () => {
    expect(reads('accuracy-drop', '0.010')).toEqual([0.01, '0.010']);
    expect(reads('accuracy-drop', 0.01)).toEqual([0.01, '0.01']);
    expect(reads('min-speedup', 2)).toEqual([2, '2']);
  });

  it('refuses a unit of another kind of budget', () => {
    for (const [name, text] of [['latency-regression', '5pt'], ['min-speedup', '2%'], ['p95-latency-ms', '2x'], ['max-size-bytes', '2ms'], ['accuracy-drop', '2MB'], ['accuracy-drop', '150pt'], ['accuracy-drop', '-1pt']] as [BudgetName, string][]) {
      expect(reads(name, text), `${name}=${text}`).toBe('invalid');
    }
  });

  it('refuses a bare points value that would mean 10 points or more, with both readings and the fix', () => {
    expect(reads('accuracy-drop', 0.5)).toBe('0.5 would mean 50 points (a fraction); write 0.5pt for half a point or 50pt if you mean it');
    expect(reads('class-accuracy-drop', '0.1')).toBe('0.1 would mean 10 points (a fraction); write 0.1pt for 0.1 points or 10pt if you mean it');
    expect(reads('ece-increase', 1)).toBe('1 would mean 100 points (a fraction); write 1pt for 1 point or 100pt if you mean it');
    // beyond 100 points only one reading is possible
    expect(reads('shift-accuracy-drop', '2')).toBe('2 would mean 200 points (a fraction); write 2pt for 2 points');
    // below 10 points a bare fraction is read as before; a relative budget is not in points
    expect(reads('accuracy-drop', 0.09)).toEqual([0.09, '0.09']);
    expect(reads('latency-regression', 0.5)).toEqual([0.5, '0.5']);
  });

  it('says the same in the config file, the flag and the action input', () => {
    expect(() => parseConfig('budgets:\n  accuracy-drop: 0.5\n', 'pg.yml')).toThrow(
      new UserError('pg.yml:2: budgets.accuracy-drop: 0.5 would mean 50 points (a fraction); write 0.5pt for half a point or 50pt if you mean it'),
    );
    expect(() => parseBudgetFlag('accuracy-drop=0.5')).toThrow(
      new UserError('--budget accuracy-drop=0.5: 0.5 would mean 50 points (a fraction); write 0.5pt for half a point or 50pt if you mean it'),
    );
    expect(() => readInputs((name) => (name === 'budgets' ? 'accuracy-drop=0.5' : ''))).toThrow(
      new UserError('input budgets: accuracy-drop=0.5: 0.5 would mean 50 points (a fraction); write 0.5pt for half a point or 50pt if you mean it'),
    );
  });

  it('records where each limit was set and how it was written: file line, --budget, action input', () => {
    const config = parseConfig('sparsity: 0.5\nbudgets:\n  accuracy-drop: 0.5pt\n  max-size-bytes: 2MiB\n  min-speedup: 1.30\n', 'pg.yml');
    expect(config.budgets).toEqual({
      'accuracy-drop': { limit: 0.005, written: '0.5pt', set_at: 'pg.yml:3' },
      'max-size-bytes': { limit: 2_097_152, written: '2MiB', set_at: 'pg.yml:4' },
      'min-speedup': { limit: 1.3, written: '1.30', set_at: 'pg.yml:5' },
    });
    expect(parseBudgetFlag('min-speedup=1.3x')).toEqual({ name: 'min-speedup', limit: 1.3, written: '1.3x', set_at: '--budget' });
    expect(readInputs((name) => (name === 'budgets' ? 'p95-latency-ms = 5ms' : '')).budgets).toEqual([{ name: 'p95-latency-ms', limit: 5, written: '5ms', set_at: 'action input budgets' }]);
  });
});
