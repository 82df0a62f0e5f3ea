import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { DEFAULT_CONFIG, loadConfig, parseConfig } from '../../src/config/loadConfig.js';

const FILE = '.prune-guard.yml';

/** The UserError message parseConfig throws for `text`. */
function problem(text: string): string {
  try {
    parseConfig(text, FILE);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('parseConfig errors', () => {
  it('suggests the closest budget name for a typo, with the line of the key', () => {
    const text = 'sparsity: 0.8\nmethod: unstructured\nbudgets:\n  acuracy-drop: 0.01\n';
    expect(problem(text)).toBe(".prune-guard.yml:4: unknown key 'budgets.acuracy-drop'; did you mean 'accuracy-drop'?");
  });

  it('names the key, the expected type and the value for a wrong type', () => {
    expect(problem('method: unstructured\nsparsity: half\n')).toBe(
      `.prune-guard.yml:2: 'sparsity' must be a fraction from 0 to below 1 like 0.5 (got "half")`,
    );
  });

  it('says which bound an out-of-range number breaks', () => {
    expect(problem('sparsity: 1\n')).toBe(`.prune-guard.yml:1: 'sparsity' must be a fraction from 0 to below 1 like 0.5 (got 1; must be < 1)`);
  });

  it('rejects an unknown top-level key and suggests the closest valid key', () => {
    expect(problem('sparcity: 0.5\n')).toBe(".prune-guard.yml:1: unknown key 'sparcity'; did you mean 'sparsity'?");
  });

  it('suggests the kebab-case key for a camelCase one', () => {
    expect(problem('keepFirstLayer: true\n')).toBe(
      ".prune-guard.yml:1: unknown key 'keepFirstLayer'; did you mean 'keep-first-layer'?",
    );
  });

  it('lists the valid keys when no key is close', () => {
    expect(problem('frobnicate: 1\n')).toMatch(/^\.prune-guard\.yml:1: unknown key 'frobnicate'; valid: sparsity, method, .*budgets$/);
  });

  it('reports an unknown nested latency key with its path', () => {
    expect(problem('latency:\n  warmup: 5\n  runz: 3\n')).toBe(".prune-guard.yml:3: unknown key 'latency.runz'; did you mean 'runs'?");
  });

  it('points at the list item that is wrong', () => {
    expect(problem('batch-sizes:\n  - 1\n  - x\n')).toBe(
      `.prune-guard.yml:3: 'batch-sizes[1]' must be a whole number from 1 to 65536 (got "x")`,
    );
  });

  it('reports the problem that comes first in the file', () => {
    expect(problem('scope: everywhere\nzzz: 1\nsparsity: x\n')).toBe(
      `.prune-guard.yml:1: 'scope' must be one of global, layer, sensitivity, sensitivity-macs, auto (got "everywhere")`,
    );
  });

  it('rejects an N:M pattern where N is not below M', () => {
    expect(problem('method: "4:2"\n')).toBe(`.prune-guard.yml:1: 'method' N:M must have N smaller than M, like "2:4" (got "4:2")`);
  });

  it('rejects a budget limit with an unknown unit', () => {
    expect(problem('budgets:\n  max-size-bytes: 2XB\n')).toBe(
      `.prune-guard.yml:2: 'budgets.max-size-bytes' must be a size in bytes above 0 like 2000000, 2MB or 1.5MiB (got "2XB")`,
    );
  });

  it('rejects a top level that is not a mapping', () => {
    expect(problem('- a\n- b\n')).toBe(
      `.prune-guard.yml:1: the config must be a mapping of settings like 'sparsity: 0.5' (got ["a","b"])`,
    );
  });

  it('reports a YAML syntax error with line and column', () => {
    expect(problem('sparsity: 0.5\nexclude: [a\n')).toMatch(/^\.prune-guard\.yml:\d+:\d+: YAML syntax error: \S/);
    expect(problem('sparsity: 0.5\nsparsity: 0.6\n')).toMatch(/^\.prune-guard\.yml:2:1: YAML syntax error: Map keys must be unique/);
  });

  it('messages are a single line', () => {
    expect(problem('exclude: [a\n')).not.toContain('\n');
  });
});

describe('parseConfig values', () => {
  it('gives the defaults for an empty or comment-only file', () => {
    expect(parseConfig('', FILE)).toEqual(DEFAULT_CONFIG);
    expect(parseConfig('# nothing yet\n', FILE)).toEqual(DEFAULT_CONFIG);
  });

  it('defaults match the documented config', () => {
    expect(DEFAULT_CONFIG).toEqual({
      sparsity: 0.5,
      method: 'unstructured',
      task: 'auto',
      recovery: 'auto',
      scope: 'auto',
      exclude: [],
      keepFirstLayer: false,
      keepLastLayer: false,
      bakeTemperature: false,
      recoveryCommand: '',
      recoveryWork: 5000,
      recoveryTimeBudget: 7200,
      batchSizes: [1, 32],
      latency: { warmup: 10, runs: 30, threads: 0, targetRelCi: 0, maxSeconds: 30, maxRuns: 2000, repeat: 1 },
      evalBatchSize: 256,
      confidence: 0.95,
      roundTo: 0,
      criterion: 'l1',
      maxLayerSparsity: 1,
      strict: false,
      executionProvider: 'cpu',
      corruptions: [],
      budgets: {},
      schedule: 'oneshot',
      scheduleSteps: 4,
      schedulePatience: 1,
      recoveryRounds: 0,
      roundsCompareSensitivity: false,
      quantize: 'none',
      quantizeCalibration: 'minmax',
      quantizeExclude: [],
    });
  });

  it('round trips every key of a full valid config into camelCase fields', () => {
    const text = [
      'sparsity: 0.8',
      'method: 2:4',
      'recovery: reconstruct',
      'scope: layer',
      'exclude: ["*.bias", "head/*"]',
      'keep-first-layer: true',
      'keep-last-layer: true',
      'bake-temperature: true',
      'recovery-command: python finetune.py',
      'recovery-work: 200',
      'recovery-time-budget: 60',
      'batch-sizes: [8, 1]',
      'latency: { warmup: 2, runs: 50, threads: 4, target-rel-ci: 0.02, max-seconds: 30, max-runs: 500 }',
      'eval-batch-size: 64',
      'confidence: 0.9',
      'round-to: 8',
      'criterion: bn-scale',
      'max-layer-sparsity: 0.9',
      'strict: true',
      'execution-provider: auto',
      'corruptions: [gaussian-noise:2, blur:1]',
      'schedule: gradual',
      'schedule-steps: 6',
      'schedule-patience: 2',
      'recovery-rounds: 3',
      'rounds-compare-sensitivity: true',
      'budgets:',
      '  accuracy-drop: 0.5%',
      '  min-speedup: 1.5',
      '  max-size-bytes: 2MB',
      'quantize: int8',
      'quantize-calibration: entropy',
      'quantize-exclude: ["/stem/*"]',
      'task: fidelity',
      '',
    ].join('\n');
    expect(parseConfig(text, FILE)).toEqual({
      sparsity: 0.8,
      method: '2:4',
      recovery: 'reconstruct',
      scope: 'layer',
      exclude: ['*.bias', 'head/*'],
      keepFirstLayer: true,
      keepLastLayer: true,
      bakeTemperature: true,
      recoveryCommand: 'python finetune.py',
      recoveryWork: 200,
      recoveryTimeBudget: 60,
      batchSizes: [8, 1],
      latency: { warmup: 2, runs: 50, threads: 4, targetRelCi: 0.02, maxSeconds: 30, maxRuns: 500, repeat: 1 },
      evalBatchSize: 64,
      confidence: 0.9,
      roundTo: 8,
      criterion: 'bn-scale',
      maxLayerSparsity: 0.9,
      strict: true,
      executionProvider: 'auto',
      corruptions: ['gaussian-noise:2', 'blur:1'],
      budgets: {
        'accuracy-drop': { limit: 0.005, written: '0.5%', set_at: '.prune-guard.yml:28' },
        'min-speedup': { limit: 1.5, written: '1.5', set_at: '.prune-guard.yml:29' },
        'max-size-bytes': { limit: 2_000_000, written: '2MB', set_at: '.prune-guard.yml:30' },
      },
      schedule: 'gradual',
      scheduleSteps: 6,
      schedulePatience: 2,
      recoveryRounds: 3,
      roundsCompareSensitivity: true,
      quantize: 'int8',
      quantizeCalibration: 'entropy',
      quantizeExclude: ['/stem/*'],
      task: 'fidelity',
    });
  });

  it('fills the rest of a partial latency block from the defaults', () => {
    expect(parseConfig('latency:\n  runs: 100\n', FILE).latency).toEqual({ warmup: 10, runs: 100, threads: 0, targetRelCi: 0, maxSeconds: 30, maxRuns: 2000, repeat: 1 });
  });

  it('does not share arrays with DEFAULT_CONFIG', () => {
    const config = parseConfig('', FILE);
    config.exclude.push('x');
    expect(DEFAULT_CONFIG.exclude).toEqual([]);
  });
});

describe('loadConfig', () => {
  it('reads and parses a file', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pg-config-')), FILE);
    writeFileSync(path, 'sparsity: 0.7\n');
    expect(loadConfig(path).sparsity).toBe(0.7);
  });

  it('names the file in errors from it', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pg-config-')), FILE);
    writeFileSync(path, 'sparsity: 0.7\nbogus: 1\n');
    expect(() => loadConfig(path)).toThrow(`${path}:2: unknown key 'bogus'`);
  });

  it('throws a UserError for a missing file', () => {
    const path = join(tmpdir(), 'does-not-exist', FILE);
    expect(() => loadConfig(path)).toThrow(UserError);
    expect(() => loadConfig(path)).toThrow(`${path}: file not found; pass the path of a .prune-guard.yml config file`);
  });
});
