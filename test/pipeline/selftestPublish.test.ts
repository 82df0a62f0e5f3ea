import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type Config } from '../../src/config/schema.js';
import { UserError } from '../../src/errors.js';
import { silentProgress, type Progress } from '../../src/io/progress.js';
import { resolveBudgets } from '../../src/ledger/budgets.js';
import { SELFTEST_FILE, selftest, type SelftestReport } from '../../src/pipeline/selftest.js';
import { fixture, tempDir } from '../support/fixtures.js';

const config: Config = { ...structuredClone(DEFAULT_CONFIG), batchSizes: [4], latency: { warmup: 1, runs: 3, threads: 1, targetRelCi: 0, maxSeconds: 0, maxRuns: 16, repeat: 1 } };
const request = (out: string, repetitions: number, model = fixture('mlp.onnx')) => ({ model, data: fixture('fmnist-calib.npz'), repetitions, config, budgets: resolveBudgets({}, []), out });
const read = (out: string): SelftestReport => JSON.parse(fs.readFileSync(path.join(out, SELFTEST_FILE), 'utf8')) as SelftestReport;

describe('selftest --out publishes like run and compare', () => {
  it('a rerun into the same folder replaces the report in one swap: a reader sees the whole old one until then, the whole new one after', async () => {
    const out = path.join(tempDir(), 'out');
    const first = await selftest(request(out, 1), silentProgress);
    expect(read(out)).toEqual(first);
    expect(fs.lstatSync(path.join(out, SELFTEST_FILE)).isSymbolicLink()).toBe(true);

    // read while the rerun measures: the complete old report, every time
    const seen: SelftestReport[] = [];
    const watching: Progress = { ...silentProgress, note: () => void seen.push(read(out)) };
    const second = await selftest(request(out, 2), watching);
    expect(seen.length).toBeGreaterThan(0);
    for (const s of seen) expect(s).toEqual(first);
    expect(read(out)).toEqual(second);
    expect(read(out).repetitions).toBe(2);
    // only the published set stays: the visible name and one run folder, no temp file, no lock (.prune-guard.lock)
    expect(fs.readdirSync(out).sort()).toEqual(['.prune-guard', SELFTEST_FILE]);
    expect(fs.readdirSync(path.join(out, '.prune-guard', 'runs'))).toHaveLength(1);
  }, 60_000);

  it('refuses an input inside --out and a selftest.json it did not write, before any measuring, leaving both untouched', async () => {
    const dir = tempDir();
    const inside = path.join(dir, 'mlp.onnx');
    fs.copyFileSync(fixture('mlp.onnx'), inside);
    await expect(selftest(request(dir, 1, inside), silentProgress)).rejects.toThrow(/--model .*sits inside the output folder/);
    const theirs = path.join(dir, SELFTEST_FILE);
    fs.writeFileSync(theirs, 'mine\n');
    const err = await selftest(request(dir, 1), silentProgress).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/selftest\.json is a file prune-guard did not write/);
    expect(fs.readFileSync(theirs, 'utf8')).toBe('mine\n');
    expect(fs.existsSync(path.join(dir, '.prune-guard'))).toBe(false);
  }, 30_000);
});
