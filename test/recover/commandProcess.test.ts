/**
 * The recovery command is a pull request's shell command: it runs in its own process group, without the
 * action's inputs in its environment, and stops with everything it started at the time budget and on
 * SIGTERM.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CommandTimedOut, commandEnv, runCommand } from '../../src/recover/external.js';
import { startCli } from '../hardening/cliProcess.js';
import { fixture, tempDir } from '../support/fixtures.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function gone(pid: number, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

/** A command whose grandchild ignores SIGTERM and would outlive a plain kill of the shell. */
function stubbornCommand(pidFile: string): string {
  return `sh -c 'trap "" TERM; echo $$ > ${pidFile}; sleep 60; true' & wait`;
}

describe('the recovery command process', () => {
  it('sees no INPUT_ variable (the action token arrives as INPUT_GITHUB-TOKEN) but sees its own paths', () => {
    const env = commandEnv({ PATH: '/bin', 'INPUT_GITHUB-TOKEN': 'ghs_secret', input_other: 'x', HOME: '/h' }, { PRUNE_GUARD_MODEL_IN: 'a.onnx' });
    expect(env).toEqual({ PATH: '/bin', HOME: '/h', PRUNE_GUARD_MODEL_IN: 'a.onnx' });
  });

  it('at its time limit the whole group is stopped, a grandchild that ignores SIGTERM included', async () => {
    const pidFile = path.join(tempDir(), 'pid');
    const t0 = Date.now();
    await expect(runCommand(stubbornCommand(pidFile), {}, () => {}, { timeoutSeconds: 0.5 })).rejects.toBeInstanceOf(CommandTimedOut);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(await gone(pid, 3000)).toBe(true);
  });

  it('SIGTERM to prune-guard stops the command and its children, and exits 143', async () => {
    const dir = tempDir();
    const pidFile = path.join(dir, 'pid');
    const out = path.join(dir, 'out');
    const run = startCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--sparsity', '0.5', '--recovery', 'command', '--recovery-command', stubbornCommand(pidFile), '--out', out, '--runs', '3', '--warmup', '1', '--batch-sizes', '1']);
    await run.waitFor(/recovery: running/, 60_000);
    while (!fs.existsSync(pidFile) || fs.readFileSync(pidFile, 'utf8').trim() === '') await new Promise((r) => setTimeout(r, 50));
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.code).toBe(143);
    expect(await gone(pid, 3000)).toBe(true);
    expect(fs.existsSync(path.join(out, 'ledger.json'))).toBe(false);
  });

  it('--time-budget stops a hanging command and the run writes its timed-out fail ledger', async () => {
    const dir = tempDir();
    const pidFile = path.join(dir, 'pid');
    const out = path.join(dir, 'out');
    const t0 = Date.now();
    const run = startCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--sparsity', '0.5', '--recovery', 'command', '--recovery-command', stubbornCommand(pidFile), '--out', out, '--runs', '3', '--warmup', '1', '--batch-sizes', '1', '--time-budget', '6']);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(1);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(await gone(Number(fs.readFileSync(pidFile, 'utf8')), 3000)).toBe(true);
    const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8'));
    expect(ledger.verdict).toBe('fail');
    expect(ledger.timed_out.limit_s).toBe(6);
  });
});
