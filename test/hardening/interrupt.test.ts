/**
 * Time budget and signals: a run that runs out of time writes a `fail` ledger saying where it stopped;
 * a run killed mid-way leaves the input model and the previous complete outputs exactly as they were.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { LOCK_NAME, PRIVATE_DIR } from '../../src/io/lock.js';
import { fixture, present, realWorld, tempDir } from '../support/fixtures.js';
import { outputSet, visibleNames } from '../support/outputSet.js';
import { runCli } from '../support/cli.js';
import { sha256, snapshot, startCli } from './cliProcess.js';

const FAST = ['--runs', '3', '--warmup', '0', '--batch-sizes', '1', '--quiet'];
// a latency stage that would take many minutes: whatever stops the run stops it there
const ENDLESS = ['--runs', '10000000', '--warmup', '0', '--batch-sizes', '1', '--quiet'];

function readLedger(out: string): Ledger {
  return JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
}

describe('time budget', () => {
  const args = (out: string, ...rest: string[]) => ['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--out', out, ...rest];

  it('stops in the stage that ran out of time and writes a fail ledger naming it', async () => {
    const out = tempDir();
    const limit = 2;
    const r = await runCli(args(out, ...ENDLESS, '--time-budget', String(limit)));
    expect(r.code, r.stderr).toBe(1);
    const ledger = readLedger(out);
    expect(validateLedger(ledger)).toEqual([]);
    expect(ledger.verdict).toBe('fail');
    expect(ledger.timed_out).toMatchObject({ model: fixture('mlp.onnx'), limit_s: limit });
    // which stage depends on how busy the machine is (latency unless loading and evaluating take the
    // whole limit); it is always a named stage, the same in stderr, ledger.json and ledger.md
    const stage = ledger.timed_out!.stage;
    expect(['load model and data', 'pruning mlp.onnx', 'evaluate dense', 'evaluate prune', 'latency']).toContain(stage);
    expect(r.stderr).toContain(`time budget of ${limit} s ran out during '${stage}'`);
    expect(ledger.timed_out!.elapsed_s).toBeGreaterThanOrEqual(limit);
    expect(fs.readFileSync(path.join(out, 'ledger.md'), 'utf8')).toContain(`${limit} s time budget during _${stage}_`);
    // no unmeasured model is published
    expect(visibleNames(out)).toEqual(['ledger.json', 'ledger.md']);
  });

  it('a budget exhausted while loading says so, and retires the previous pruned model the new ledger no longer describes', async () => {
    const out = tempDir();
    expect((await runCli(args(out, ...FAST, '--budget', 'accuracy-drop=100pt', '--budget', 'class-accuracy-drop=100pt', '--budget', 'ece-increase=100pt'))).code).toBe(0);
    expect(fs.existsSync(path.join(out, 'mlp.pruned.onnx'))).toBe(true);
    const r = await runCli(args(out, ...FAST, '--time-budget', '0.001'));
    expect(r.code).toBe(1);
    expect(readLedger(out).timed_out!.stage).toBe('load model and data');
    expect(visibleNames(out)).toEqual(['ledger.json', 'ledger.md']);
  });

  it('stops recovery within a few seconds of the budget, not at the end of recovery', async () => {
    const out = tempDir();
    // recovery on this CNN takes minutes on a busy runner; its own budget is lifted so only --time-budget stops it
    const r = await runCli(['run', '--model', fixture('resnet.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--sparsity', '0.8', '--recovery-time-budget', '0', '--out', out, ...FAST, '--time-budget', '6']);
    expect(r.code, r.stderr).toBe(1);
    const stopped = readLedger(out).timed_out!;
    expect(stopped.elapsed_s - stopped.limit_s, stopped.stage).toBeLessThan(5);
  });

  it('can be set in the config file', async () => {
    const out = tempDir();
    const cfg = path.join(tempDir(), 'budget.yml');
    fs.writeFileSync(cfg, 'time-budget: 0.001\n');
    const r = await runCli(args(out, ...FAST, '--config', cfg));
    expect(r.code).toBe(1);
    expect(readLedger(out).timed_out!.limit_s).toBe(0.001);
  });
});

describe('signals on the model trained elsewhere', () => {
  const model = realWorld('model.onnx');
  const data = realWorld('test.npz');
  const inputHash = () => sha256(model);
  const out = tempDir();
  let before: Record<string, string>;
  let beforeSet: Record<string, string>;
  let modelHash: string;

  beforeAll(async () => {
    present(model);
    present(data);
    modelHash = inputHash();
    // a previous complete run whose outputs must survive the interrupted ones
    const r = await runCli(['run', '--model', model, '--data', data, '--out', out, ...FAST]);
    expect([0, 1]).toContain(r.code);
    before = snapshot(out);
    beforeSet = outputSet(out, sha256);
    expect(visibleNames(out)).toEqual(['ledger.json', 'ledger.md', 'model.pruned.onnx']);
  }, 120_000);

  it.each([
    ['SIGTERM', 143, /latency/],
    ['SIGINT', 130, /evaluate dense/],
  ] as const)('%s mid-run exits %i, leaves the input and the previous outputs intact, and no temp files', async (signal, code, stage) => {
    const run = startCli(['run', '--model', model, '--data', data, '--out', out, ...ENDLESS, '--eval-batch-size', '1']);
    await run.waitFor(stage);
    // by now the pruned model is saved (staged) and being measured
    run.child.kill(signal);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).toMatch(new RegExp(`prune-guard: stopped by ${signal}; the input model and earlier outputs are unchanged`));
    expect(inputHash()).toBe(modelHash);
    expect(snapshot(out)).toEqual(before);
    expect(outputSet(out, sha256)).toEqual(beforeSet);
  });

  it('after SIGKILL (no cleanup possible) the next run clears the dead lock and staging folder', async () => {
    const run = startCli(['run', '--model', model, '--data', data, '--out', out, ...ENDLESS]);
    await run.waitFor(/latency/);
    run.child.kill('SIGKILL');
    await run.done;
    const left = fs.readdirSync(out);
    expect(left).toContain(LOCK_NAME);
    expect(fs.readdirSync(path.join(out, PRIVATE_DIR, 'runs'))).toHaveLength(2);
    // earlier outputs are still the complete old ones
    expect(outputSet(out, sha256)).toEqual(beforeSet);
    expect(visibleNames(out)).toEqual(['.prune-guard.lock', 'ledger.json', 'ledger.md', 'model.pruned.onnx']);
    const r = await runCli(['run', '--model', model, '--data', data, '--out', out, ...FAST]);
    expect([0, 1]).toContain(r.code);
    expect(visibleNames(out)).toEqual(['ledger.json', 'ledger.md', 'model.pruned.onnx']);
    expect(fs.readdirSync(path.join(out, PRIVATE_DIR, 'runs'))).toHaveLength(1);
    expect(inputHash()).toBe(modelHash);
  });
});
