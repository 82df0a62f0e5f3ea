import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { budgetAnnotations } from '../../src/github/annotations.js';
import { appendHistory, emptyHistory, HISTORY_LIMIT, parseHistory } from '../../src/github/history.js';
import type { BudgetName, BudgetResult, ModelLedger } from '../../src/ledger/types.js';
import { refuseLfsPointer } from '../../src/github/checkModels.js';
import { COMMENT_LIMIT, fitComment } from '../../src/github/fit.js';
import { gateFails, statusDescription } from '../../src/github/gate.js';
import { readInputs } from '../../src/github/inputs.js';
import { resolveSettings } from '../../src/github/settings.js';
import { findModels, shardModels } from '../../src/github/models.js';
import { trendChart } from '../../src/github/history.js';
import { renderReport } from '../../src/github/report.js';
import { renderReview } from '../../src/ledger/renderReview.js';
import { sampleLedger, sampleModel } from '../ledger/fixtures.js';
import { parse } from 'yaml';
import { ROOT, tempDir } from '../support/fixtures.js';

const get = (values: Record<string, string>) => (name: string) => values[name] ?? '';

describe('inputs', () => {
  it('parses multi-line budgets with the CLI parser, shift sets, shard and defaults', () => {
    const i = readInputs(get({ budgets: 'accuracy-drop=0.5%\n# a comment\nmax-size-bytes = 2MB\n', 'shift-data': 'rotated=data/r.npz\nnoisy = data/n.npz', shard: '2/4', data: 'test.npz' }));
    expect(i.budgets).toEqual([
      { name: 'accuracy-drop', limit: 0.005, written: '0.5%', set_at: 'action input budgets' },
      { name: 'max-size-bytes', limit: 2_000_000, written: '2MB', set_at: 'action input budgets' },
    ]);
    expect(i.shiftData).toEqual([{ name: 'rotated', path: 'data/r.npz' }, { name: 'noisy', path: 'data/n.npz' }]);
    expect(i.shard).toEqual({ index: 2, count: 4 });
    expect(i).toMatchObject({ models: ['**/*.onnx'], mode: 'check', comment: 'auto', failOn: 'fail', out: 'prune-guard-out' });
  });

  it.each([
    [{ budgets: 'accuracy-drop=lots' }, /^input budgets: accuracy-drop=lots: 'accuracy-drop' must be/],
    [{ budgets: 'acuracy-drop=0.1' }, /^input budgets: .*unknown budget 'acuracy-drop'.*accuracy-drop/],
    [{ shard: '5/4' }, /^input shard: '5\/4' must be i\/n/],
    [{ mode: 'weekly' }, /^input mode: 'weekly' is not one of check, nightly, aggregate/],
    [{ 'fail-on': 'sometimes' }, /^input fail-on:/],
    [{ 'target-sparsity': '1.2' }, /^input target-sparsity must be a fraction from 0 to below 1 like 0\.5 \(got '1\.2'; must be < 1\)$/],
    [{ runs: '0' }, /^input runs must be a whole number of 1 or more \(got '0'; must be >= 1\)$/],
    [{ method: 'bogus' }, /^input method must be one of unstructured, structured, hybrid or an N:M pattern/],
    [{ 'shift-data': 'rotated' }, /^input shift-data: 'rotated' must be NAME=path/],
    [{ 'shift-data': 'a=x.npz\na=y.npz' }, /^input shift-data: 'a=y.npz' reuses the name 'a' of input shift-data: 'a=x.npz'/],
    [{ 'execution-provider': 'tpu' }, /^input execution-provider must be one of cpu, cuda, auto \(got 'tpu'\)$/],
    [{ mode: 'aggregate' }, /^input ledgers: mode aggregate needs/],
    [{ 'pull-request': '7' }, /^input pull-request: only used with mode: aggregate/],
  ])('refuses %j with a one-line message naming the input', (values, message) => {
    expect(() => readInputs(get(values))).toThrow(message);
  });
});

describe('settings from inputs', () => {
  it('lays config-backed inputs over the config file as the CLI lays its flags, and records where budgets were set', () => {
    const ws = tempDir();
    fs.writeFileSync(path.join(ws, '.prune-guard.yml'), 'sparsity: 0.6\nexecution-provider: auto\nlatency: { threads: 1 }\nbudgets:\n  max-size-bytes: 2MB\n');
    const inputs = readInputs(get({ data: 'test.npz', 'target-sparsity': '0.7', 'execution-provider': 'cpu', runs: '5', 'batch-sizes': '1', budgets: 'accuracy-drop=0.5pt' }));
    const s = resolveSettings(inputs, ws);
    // an explicit input wins over the file, even when it names the built-in default
    expect(s.config).toMatchObject({ sparsity: 0.7, executionProvider: 'cpu', batchSizes: [1] });
    expect(s.config.latency).toMatchObject({ runs: 5, threads: 1 });
    expect(s.budgets.find((b) => b.name === 'max-size-bytes')).toMatchObject({ written: '2MB', set_at: '.prune-guard.yml:5', source: 'config' });
    expect(s.budgets.find((b) => b.name === 'accuracy-drop')).toMatchObject({ limit: 0.005, written: '0.5pt', set_at: 'action input budgets', source: 'flag' });
    // unset inputs leave the file's values
    expect(resolveSettings(readInputs(get({ data: 'test.npz' })), ws).config).toMatchObject({ sparsity: 0.6, executionProvider: 'auto' });
  });
});

describe('models and shards', () => {
  it('finds models by glob, skipping .git, node_modules and the output folder', () => {
    const root = tempDir();
    for (const f of ['a/x.onnx', 'a/b/y.onnx', 'c/z.onnx', 'a/notes.txt', 'node_modules/p/m.onnx', '.git/m.onnx', 'out/a/x.pruned.onnx']) {
      fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
      fs.writeFileSync(path.join(root, f), '');
    }
    expect(findModels(root, ['**/*.onnx'], ['out'])).toEqual(['a/b/y.onnx', 'a/x.onnx', 'c/z.onnx']);
    expect(findModels(root, ['a/**'], ['out'])).toEqual(['a/b/y.onnx', 'a/x.onnx']);
  });

  it('shards split deterministically: every model exactly once, whatever the input order', () => {
    const models = Array.from({ length: 11 }, (_, i) => `m/${String.fromCharCode(97 + i)}.onnx`);
    const shuffled = [...models].reverse();
    const shards = [1, 2, 3].map((index) => shardModels(shuffled, { index, count: 3 }));
    expect(shards.flat().sort()).toEqual(models);
    expect(shards.map((s) => s.length)).toEqual([4, 4, 3]);
    expect(shardModels(models, { index: 2, count: 3 })).toEqual(shards[1]);
  });
});

describe('comment size', () => {
  it('empties folded sections, largest first, before cutting anything else', () => {
    const small = { summary: 'small', body: 'y'.repeat(1000) };
    const big = { summary: 'big', body: 'x'.repeat(70_000) };
    const text = fitComment(['# head', big, small, 'tail'], COMMENT_LIMIT);
    expect(text.length).toBeLessThanOrEqual(COMMENT_LIMIT);
    expect(text).toContain('<details><summary>big</summary>\n\n_Omitted (70000 characters)');
    expect(text).toContain('y'.repeat(1000));
    expect(text.endsWith('tail\n')).toBe(true);
  });

  it('ten models with long ledgers: the review stays whole, the largest model folds are emptied and say where the full ledger is', () => {
    const layers = Array.from({ length: 120 }, (_, i) => ({
      name: `backbone.stage${i}.conv.weight`,
      node: `conv${i}`,
      size: 4096,
      points: [0, 0.5, 0.9].map((ratio) => ({ ratio, calib_nll: 0.3 + ratio, calib_accuracy: 0.9 - ratio / 10 })),
      allocated: 0.5,
      seconds: 0.1,
    }));
    const sensitivity = { unit: 'weights' as const, against: 'labels' as const, calib_samples: 256, ratios: [0, 0.5, 0.9], dense: { calib_nll: 0.3, calib_accuracy: 0.9 }, cap: 0.95, predicted_increase: 0.1, seconds: 9, layers };
    const models = Array.from({ length: 10 }, (_, i) => sampleModel({ model: `models/m${i}.onnx`, sensitivity }));
    const ledger = { ...sampleLedger(), models };
    const text = fitComment(renderReport(ledger, { title: '10 changed models in #7', links: {} }), COMMENT_LIMIT);
    expect(text.length).toBeLessThanOrEqual(COMMENT_LIMIT);
    expect(text).toContain(renderReview(ledger, 'action'));
    expect(text.match(/<details><summary>/g)).toHaveLength(10);
    expect(text).toMatch(/_Omitted \(\d+ characters\) to stay within GitHub's comment limit: the job summary and the ledger artifact have it in full\._/);
  });

  it('cuts plain text last, closing an open code fence and details, never splitting a surrogate pair', () => {
    const long = '<details>\n\n```\n' + '😀'.repeat(40_000);
    const text = fitComment([long], 10_000);
    expect(text.length).toBeLessThanOrEqual(10_000);
    expect(text).toMatch(/```\n<\/details>\n\n_…truncated/);
    expect(text.includes('\ud83d\n')).toBe(false);
  });
});

describe('gate and charts', () => {
  it('fail-on decides which verdicts fail the step', () => {
    expect([gateFails('fail', 'fail'), gateFails('warn', 'fail'), gateFails('warn', 'warn'), gateFails('fail', 'never')]).toEqual([true, false, true, false]);
  });

  it('Mermaid trend lines leave out missing values, quote labels and span the values rather than start at zero', () => {
    expect(trendChart('a "b"', 'accuracy %', [['01-02#1', 90.1], ['01-03#2', null], ['01-04#3', 89.6]])).toBe(
      '```mermaid\nxychart-beta\n  title "a \'b\'"\n  x-axis ["01-02#1", "01-04#3"]\n  y-axis "accuracy %" 89.5 --> 90.2\n  line [90.1, 89.6]\n```',
    );
    expect(trendChart('t', 'ms', [['x', null]])).toBeUndefined();
    // a tiny model's latency keeps its own scale and never goes below zero
    expect(trendChart('t', 'ms', [['a', 0.024], ['b', 0.026]], 0.0026)).toContain('y-axis "ms" 0.0236 --> 0.0264');
  });
});

describe('action.yml and the example workflows', () => {
  const actionYml = parse(fs.readFileSync(path.join(ROOT, 'action.yml'), 'utf8'));
  const declared = Object.keys(actionYml.inputs);

  it('declares every input the action reads, runs on node24 from dist/index.js', () => {
    const read = new Set<string>();
    readInputs((name) => (read.add(name), name === 'data' ? 'x.npz' : ''));
    read.add('onnxruntime-path');
    expect(declared.sort()).toEqual([...read].sort());
    expect(actionYml.runs).toEqual({ using: 'node24', main: 'dist/index.js' });
    expect(Object.keys(actionYml.outputs).sort()).toEqual(['comment-url', 'ledger', 'pruned-models', 'verdict']);
  });

  const dir = path.join(ROOT, 'examples/workflows');
  it.each(fs.readdirSync(dir))('%s uses only declared inputs, never pull_request_target', (file) => {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    expect(text).not.toMatch(/^\s*pull_request_target/m);
    const wf = parse(text);
    const steps = Object.values(wf.jobs as Record<string, { steps: { uses?: string; with?: Record<string, unknown> }[] }>).flatMap((j) => j.steps);
    const mine = steps.filter((s) => s.uses?.startsWith('prune-guard/prune-guard@'));
    expect(mine.length).toBeGreaterThan(0);
    for (const s of mine) for (const key of Object.keys(s.with ?? {})) expect(declared).toContain(key);
  });
});

describe('budget annotations', () => {
  const budget = (name: BudgetName, source: 'default' | 'config' | 'flag', verdict: 'pass' | 'warn' | 'fail', limit: number, actual: number | null): BudgetResult => ({
    name,
    limit,
    actual,
    verdict,
    direction: 'max',
    source,
    detail: actual === null ? 'not measured: dense per-class accuracy was not evaluated' : '/home/runner/work/m/out/m.pruned.onnx',
  });

  it('point at the workflow line for budgets: inputs, at the config line otherwise, and skip passing budgets', () => {
    const ws = tempDir();
    fs.mkdirSync(path.join(ws, '.github/workflows'), { recursive: true });
    fs.writeFileSync(path.join(ws, '.github/workflows/ci.yml'), 'on: pull_request\njobs:\n  x:\n    steps:\n      - with:\n          budgets: |\n            max-size-bytes=2MB\n');
    fs.writeFileSync(path.join(ws, 'pg.yml'), 'sparsity: 0.5\nbudgets:\n  ece-increase: 0.01\n  accuracy-drop: 0.01\n');
    const model = {
      model: 'm.onnx',
      method: 'unstructured',
      target_sparsity: 0.5,
      steps: [],
      budgets: [
        { ...budget('accuracy-drop', 'config', 'fail', 0.01, 0.022000000000000002), detail: '89.55% → 87.35%' },
        budget('max-size-bytes', 'flag', 'fail', 2_000_000, 2_080_000),
        budget('ece-increase', 'config', 'pass', 0.01, 0.001),
        budget('class-accuracy-drop', 'default', 'warn', 0.05, null),
      ],
    } as unknown as ModelLedger;
    const got = budgetAnnotations(model, { workspace: ws, configFile: 'pg.yml', workflowFile: '.github/workflows/ci.yml' });
    expect(got.map((a) => [a.path, a.start_line, a.annotation_level, a.title])).toEqual([
      ['pg.yml', 4, 'failure', 'm.onnx: accuracy-drop 2.20 pt > 1 pt'],
      ['.github/workflows/ci.yml', 7, 'failure', 'm.onnx: max-size-bytes 2.08 MB > 2 MB'],
      // a default limit is not written anywhere: the annotation points at the config's budgets mapping
      ['pg.yml', 2, 'warning', 'm.onnx: class-accuracy-drop not measured'],
    ]);
    // worded like the comment: value, limit, margin, why and what to do; no raw float, no runner path
    expect(got[0].message).toBe(
      'accuracy-drop (dense → pruned) 2.20 pt, limit ≤ 1 pt, 1.20 pt over. Why: 89.55% → 87.35%. What to do: accuracy-drop ≤ 1 pt is set in the config file. Lower sparsity (now 0.5), add calib-data so recovery wins accuracy back, or raise the limit.',
    );
    expect(got[1].message).toBe('max-size-bytes (dense → pruned) 2.08 MB, limit ≤ 2 MB, 80.00 kB over. What to do: max-size-bytes ≤ 2 MB is set by the budgets input. Use method: structured (zeros still take their place in the file), or raise the limit.');
    expect(got[2].message).toBe('class-accuracy-drop (dense → pruned) limit ≤ 5 pt: not measured: dense per-class accuracy was not evaluated. What to do: class-accuracy-drop ≤ 5 pt is the default.');
  });
});

describe('check-run titles and commit statuses', () => {
  it('name what failed and by how much, and cut at a budget, never mid-number', () => {
    expect(statusDescription('FAIL: accuracy-drop 5.05 pt > 1 pt')).toBe('FAIL: accuracy-drop 5.05 pt > 1 pt');
    const title = 'FAIL: shift-accuracy-drop 12.50 pt > 2 pt; class-accuracy-drop 28.00 pt > 8 pt; class-accuracy-drop vs base 24.00 pt > 8 pt; 14 more fail or warn';
    expect(title.length).toBeGreaterThan(140);
    expect(statusDescription(title)).toBe('FAIL: shift-accuracy-drop 12.50 pt > 2 pt; class-accuracy-drop 28.00 pt > 8 pt; class-accuracy-drop vs base 24.00 pt > 8 pt…');
  });
});
