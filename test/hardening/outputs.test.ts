/**
 * Output safety: the input model is never modified, re-running into the same folder is safe, and two
 * runs into one folder take turns (lock) so the ledger always describes the model file beside it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { getMetadata, loadModel } from '../../src/onnx/model.js';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { LOCK_NAME, newToken, PRIVATE_DIR } from '../../src/io/lock.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { outputSet, visibleNames } from '../support/outputSet.js';
import { runCli } from '../support/cli.js';
import { sha256, startCli } from './cliProcess.js';

const MODEL = fixture('mlp.onnx');
const DATA = fixture('fmnist-test.npz');
// generous budgets: these tests are about files, not about the verdict
const FAST = ['--runs', '3', '--warmup', '0', '--batch-sizes', '1', '--quiet', '--budget', 'accuracy-drop=100pt', '--budget', 'class-accuracy-drop=100pt', '--budget', 'ece-increase=100pt'];
const run = (out: string, sparsity: number, ...rest: string[]) => ['run', '--model', MODEL, '--data', DATA, '--out', out, '--sparsity', String(sparsity), ...FAST, ...rest];

function readLedger(out: string): Ledger {
  return JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
}

/** The ledger in `out` is valid and describes the model file next to it, byte for byte. */
function expectConsistent(out: string): Ledger {
  const ledger = readLedger(out);
  expect(validateLedger(ledger)).toEqual([]);
  const m = ledger.models[0];
  const file = m.pruned;
  expect(path.dirname(path.resolve(file))).toBe(path.resolve(out));
  const model = loadModel(file);
  expect(getMetadata(model.proto, 'prune-guard.target_sparsity')).toBe(String(m.target_sparsity));
  const final = m.steps[m.steps.length - 1];
  expect(final.artifact).toBe(file);
  expect(final.size_bytes).toBe(fs.statSync(file).size);
  expect(Math.abs(final.sparsity - m.target_sparsity)).toBeLessThan(0.01);
  return ledger;
}

/** No lock, staging folder or temp file left in `out`: one published set. */
function expectNoLeftovers(out: string): void {
  expect(fs.readdirSync(out).filter((n) => n === LOCK_NAME || n.endsWith('.tmp'))).toEqual([]);
  expect(fs.readdirSync(path.join(out, PRIVATE_DIR, 'runs'))).toHaveLength(1);
}

/** The lock a run of this process's host with `pid` writes. */
async function lockOf(pid: number, token = newToken()): Promise<string> {
  return JSON.stringify({ format: 'prune-guard-lock/1', token, pid, host: (await import('node:os')).hostname(), started: 'earlier' });
}

/** Exit 2 with exactly one error line matching `pattern`. */
function expectRefused(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  const errors = r.stderr.split('\n').filter((l) => /error:/.test(l));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(pattern);
}

describe('outputs', () => {
  it('leaves the input model untouched and can re-run into the same folder', async () => {
    const out = tempDir();
    const before = sha256(MODEL);
    const first = await runCli(run(out, 0.3));
    expect(first.code, first.stderr).toBe(0);
    expectConsistent(out);
    const second = await runCli(run(out, 0.6));
    expect(second.code, second.stderr).toBe(0);
    expect(expectConsistent(out).models[0].target_sparsity).toBe(0.6);
    expect(sha256(MODEL)).toBe(before);
    expect(visibleNames(out)).toEqual(['ledger.json', 'ledger.md', 'mlp.pruned.onnx']);
    expectNoLeftovers(out);
  });

  it('a rerun with recovery into a folder holding steps/ works, calibration set included', async () => {
    const out = tempDir();
    const calib = fixture('fmnist-calib.npz');
    const inputs = [MODEL, DATA, calib].map(sha256);
    const withCalib = (sparsity: number) => run(out, sparsity, '--calib', calib, '--recovery', 'reconstruct', '--scope', 'global');
    expect((await runCli(withCalib(0.3))).code).toBe(0);
    const second = await runCli(withCalib(0.6));
    expect(second.code, second.stderr).toBe(0);
    const m = readLedger(out).models[0];
    expect(m.target_sparsity).toBe(0.6);
    expect(getMetadata(loadModel(m.pruned).proto, 'prune-guard.target_sparsity')).toBe('0.6');
    expect(Object.keys(outputSet(out))).toEqual(['ledger.json', 'ledger.md', 'mlp.pruned.onnx', 'steps/01-prune.onnx', 'steps/02-reconstruct.onnx']);
    expect([MODEL, DATA, calib].map(sha256)).toEqual(inputs);
    expectNoLeftovers(out);
  });

  it('a ledger.json that is a folder (not prune-guard\'s) is refused in one line before any work; the old set stays whole', async () => {
    const out = tempDir();
    expect((await runCli(run(out, 0.3))).code).toBe(0);
    fs.rmSync(path.join(out, 'ledger.json'));
    fs.mkdirSync(path.join(out, 'ledger.json'));
    const before = outputSet(out, sha256);
    const r = await runCli(run(out, 0.6));
    expectRefused(r, new RegExp(`--out ${out}: ledger\\.json is a folder prune-guard did not write, where this run publishes its ledger\\.json; move it away`));
    expect(r.stderr).not.toMatch(/pruning/);
    expect(outputSet(out, sha256)).toEqual(before);
    expectNoLeftovers(out);
  });

  it('compare publishes the same way: a rerun replaces its ledger, a file in the way is refused', async () => {
    const out = tempDir();
    const compare = ['compare', '--base', MODEL, '--head', MODEL, '--data', DATA, '--out', out, ...FAST];
    expect((await runCli(compare)).code).toBe(0);
    expect((await runCli(compare)).code).toBe(0);
    expect(visibleNames(out)).toEqual(['ledger.json', 'ledger.md']);
    expectNoLeftovers(out);
    fs.rmSync(path.join(out, 'ledger.md'));
    fs.writeFileSync(path.join(out, 'ledger.md'), 'my notes');
    expectRefused(await runCli(compare), /ledger\.md is a file prune-guard did not write/);
    expect(fs.readFileSync(path.join(out, 'ledger.md'), 'utf8')).toBe('my notes');
  });

  it('two concurrent runs into one folder take turns; the ledger matches the model beside it', async () => {
    const out = tempDir();
    const a = startCli(run(out, 0.3));
    const b = startCli(run(out, 0.7));
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    // exactly one of them found the folder locked and waited
    expect([ra.stderr, rb.stderr].filter((s) => /waiting for another prune-guard run \(pid \d+\)/.test(s))).toHaveLength(1);
    const ledger = expectConsistent(out);
    expect([0.3, 0.7]).toContain(ledger.models[0].target_sparsity);
    expectNoLeftovers(out);
  });

  it('two concurrent runs into different folders do not interfere', async () => {
    const [o1, o2] = [tempDir(), tempDir()];
    const [r1, r2] = await Promise.all([startCli(run(o1, 0.3)).done, startCli(run(o2, 0.7)).done]);
    expect([r1.code, r2.code]).toEqual([0, 0]);
    expect(expectConsistent(o1).models[0].target_sparsity).toBe(0.3);
    expect(expectConsistent(o2).models[0].target_sparsity).toBe(0.7);
  });

  it('a lock left by a dead process is taken over with its recorded staging folder; a user file named like a temp file survives', async () => {
    const out = tempDir();
    expect((await runCli(run(out, 0.3))).code).toBe(0);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const token = newToken();
    fs.writeFileSync(path.join(out, LOCK_NAME), await lockOf(Number(dead.stdout), token));
    // what the dead run had done: recorded its token, then started staging
    const manifest = path.join(out, PRIVATE_DIR, 'runs.json');
    const recorded = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { runs: string[] };
    fs.writeFileSync(manifest, JSON.stringify({ ...recorded, runs: [...recorded.runs, token] }));
    fs.mkdirSync(path.join(out, PRIVATE_DIR, 'runs', token));
    fs.writeFileSync(path.join(out, PRIVATE_DIR, 'runs', token, 'mlp.pruned.onnx'), 'half');
    const user = path.join(out, '.backup.2024.deadbeef.tmp');
    fs.writeFileSync(user, 'mine');
    const r = await runCli(run(out, 0.5));
    expect(r.code, r.stderr).toBe(0);
    expectConsistent(out);
    expect(fs.existsSync(path.join(out, PRIVATE_DIR, 'runs', token))).toBe(false);
    expect(fs.readFileSync(user, 'utf8')).toBe('mine');
    expect(fs.readdirSync(out).filter((n) => n === LOCK_NAME)).toEqual([]);
    expect(fs.readdirSync(path.join(out, PRIVATE_DIR, 'runs'))).toHaveLength(1);
  });

  it('a lock file in another format (a user file of that name) is refused in one line and never deleted', async () => {
    const out = tempDir();
    const lock = path.join(out, LOCK_NAME);
    fs.writeFileSync(lock, JSON.stringify({ pid: 1, host: 'x' }));
    const before = sha256(lock);
    expectRefused(await runCli(run(out, 0.5)), new RegExp(`--out ${out}: \\.prune-guard\\.lock is not a lock prune-guard wrote; prune-guard never deletes it`));
    expect(sha256(lock)).toBe(before);
    expect(fs.readdirSync(out)).toEqual([LOCK_NAME]);
  });

  it('a lock held by a live run is waited for, then refused in one line', async () => {
    const out = tempDir();
    // this test process is alive on this host: its lock is not stale
    fs.writeFileSync(path.join(out, LOCK_NAME), await lockOf(process.pid));
    const r = await runCli(run(out, 0.5, '--time-budget', '1'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`prune-guard: error: --out ${out}: another prune-guard run \\(pid ${process.pid} .*\\) is writing there; wait for it, use another --out`));
    expect(fs.readdirSync(out)).toEqual([LOCK_NAME]);
  });
});
