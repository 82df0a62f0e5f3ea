import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../src/ledger/types.js';
import { validateLedger } from '../src/ledger/validateLedger.js';
import { runDist, type CliResult } from './support/cli.js';
import { fixture, ROOT, tempDir } from './support/fixtures.js';
import { VERSION } from '../src/version.js';

function listFiles(dir: string, prefix = ''): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  ).sort();
}

describe('committed dist/', () => {
  it('is what `npm run build` makes from the current source (rebuild and commit dist/ when this fails)', () => {
    const fresh = tempDir('prune-guard-dist-');
    execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), fresh], { cwd: ROOT });
    const committed = path.join(ROOT, 'dist');
    expect(listFiles(committed)).toEqual(listFiles(fresh));
    for (const f of listFiles(fresh)) {
      const same = fs.readFileSync(path.join(fresh, f)).equals(fs.readFileSync(path.join(committed, f)));
      expect(same, `dist/${f} is stale: run npm run build and commit dist/`).toBe(true);
    }
  });

  it('src/version.ts matches package.json', () => {
    expect(VERSION).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });
});

// Smoke runs of the bundle as `npx prune-guard` runs it; what the commands compute is tested in process.
describe('the built CLI (bin/prune-guard.js on dist/)', () => {
  const FAST = ['--warmup', '1', '--runs', '3', '--batch-sizes', '1'];
  const runOut = tempDir();
  const compareOut = tempDir();
  const pruned = path.join(runOut, 'mlp.pruned.onnx');
  const readLedger = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'ledger.json'), 'utf8')) as Ledger;
  let run: CliResult;
  let compare: CliResult;

  beforeAll(async () => {
    run = await runDist(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-calib.npz'), '--sparsity', '0.5', '--out', runOut, ...FAST]);
    compare = await runDist(['compare', '--base', fixture('mlp.onnx'), '--head', pruned, '--data', fixture('fmnist-calib.npz'), '--out', compareOut, '--budget', 'latency-regression=10', ...FAST]);
  }, 120_000);

  it('run prunes, prints the ledger it writes, logs its stages on stderr and exits 0 on warn', () => {
    const ledger = readLedger(runOut);
    expect(validateLedger(ledger)).toEqual([]);
    // 50% of the MLP without recovery: every interval straddles its limit on the 512 calibration samples
    expect(ledger.verdict).toBe('warn');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^prune-guard: /m);
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.stdout).toBe(fs.readFileSync(path.join(runOut, 'ledger.md'), 'utf8'));
    expect(ledger.models[0].steps.map((s) => s.name)).toEqual(['dense', 'prune']);
    expect(ledger.models[0].pruned).toBe(pruned);
    expect(fs.existsSync(pruned)).toBe(true);
  });

  it('compare measures base and head and exits 0 on warn', () => {
    const ledger = readLedger(compareOut);
    expect(validateLedger(ledger)).toEqual([]);
    expect(ledger.verdict).toBe('warn');
    expect(compare.code, compare.stderr).toBe(0);
    expect(ledger.models[0].steps.map((s) => [s.name, s.artifact])).toEqual([['base', fixture('mlp.onnx')], ['head', pruned]]);
    // budget names in tables keep non-breaking hyphens
    expect(compare.stdout.replace(/\u2011/g, '-')).toContain('`latency-regression`');
  });
});
