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
import { LOCK_NAME } from '../../src/io/lock.js';
import { STAGING_PREFIX } from '../../src/io/outputDir.js';
import { fixture, tempDir } from '../support/fixtures.js';
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

/** No lock, staging folder or temp file left in `out`. */
function expectNoLeftovers(out: string): void {
  const names = fs.readdirSync(out);
  expect(names.filter((n) => n === LOCK_NAME || n.startsWith(STAGING_PREFIX) || n.endsWith('.tmp'))).toEqual([]);
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
    expect(fs.readdirSync(out).sort()).toEqual(['ledger.json', 'ledger.md', 'mlp.pruned.onnx']);
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

  it('a lock left by a dead process is taken over, with its staging and temp files', async () => {
    const out = tempDir();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    fs.writeFileSync(path.join(out, LOCK_NAME), JSON.stringify({ pid: Number(dead.stdout), host: (await import('node:os')).hostname(), started: 'earlier' }));
    fs.mkdirSync(path.join(out, `${STAGING_PREFIX}${dead.stdout}-0badc0de`));
    fs.writeFileSync(path.join(out, `${STAGING_PREFIX}${dead.stdout}-0badc0de`, 'mlp.pruned.onnx'), 'half');
    fs.writeFileSync(path.join(out, `.ledger.json.${dead.stdout}.0badc0de.tmp`), '{"half');
    const r = await runCli(run(out, 0.5));
    expect(r.code, r.stderr).toBe(0);
    expectConsistent(out);
    expectNoLeftovers(out);
  });

  it('a lock held by a live run is waited for, then refused in one line', async () => {
    const out = tempDir();
    // this test process is alive on this host: its lock is not stale
    fs.writeFileSync(path.join(out, LOCK_NAME), JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), started: 'now' }));
    const r = await runCli(run(out, 0.5, '--time-budget', '1'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`prune-guard: error: --out ${out}: another prune-guard run \\(pid ${process.pid} .*\\) is writing there; wait for it, use another --out`));
    expect(fs.readdirSync(out)).toEqual([LOCK_NAME]);
  });
});
