import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/types.js';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { firstSamples } from '../support/slice.js';

/**
 * The same run, idle and beside two busy processes, ships the same bytes and the same quality numbers:
 * recovery's work is sized from the model, never from how fast the machine ran it.
 */

const burners: ChildProcess[] = [];

function startBurners(): void {
  for (let i = 0; i < 2; i++) burners.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
}

function stopBurners(): void {
  for (const b of burners.splice(0)) b.kill('SIGKILL');
}

afterAll(stopBurners);

let data: string;
let calib: string;
beforeAll(() => {
  data = firstSamples(fixture('fmnist-test.npz'), 200);
  calib = firstSamples(fixture('fmnist-calib.npz'), 64);
});

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Every quality number of the ledger: per step accuracy, sparsity, calibration scores and kept stages; no timings. */
function quality(ledger: Ledger): unknown {
  const m = ledger.models[0];
  return {
    cut: m.cut_short ?? null,
    steps: m.steps.map((s) => ({
      name: s.name,
      accuracy: s.accuracy,
      per_class: s.per_class,
      ece: s.ece,
      nll: s.nll,
      agreement: s.agreement,
      sparsity: s.sparsity,
      nonzero: s.nonzero_params,
      calib: s.recovery ? [s.recovery.calib_accuracy_before, s.recovery.calib_accuracy_after, s.recovery.calib_nll_before, s.recovery.calib_nll_after] : null,
      description: s.description.replace(/\d+(\.\d+)? s\b/g, 'S s'),
    })),
    classes: m.class_changes,
  };
}

async function runOnce(args: readonly string[]): Promise<{ sha: string; quality: unknown }> {
  const out = tempDir();
  const r = await runCli([...args, '--data', data, '--calib', calib, '--out', out, '--runs', '3', '--warmup', '1', '--batch-sizes', '1', '--quiet']);
  expect(r.stderr).not.toMatch(/internal error/);
  expect([0, 1]).toContain(r.code);
  const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
  const pruned = fs.readdirSync(out).find((f) => f.endsWith('.pruned.onnx'))!;
  return { sha: sha256(path.join(out, pruned)), quality: quality(ledger) };
}

/** The run idle, then beside two busy processes: the same bytes and numbers; returns the idle run's step names. */
async function idleThenLoaded(args: readonly string[]): Promise<string[]> {
  const idle = await runOnce(args);
  startBurners();
  try {
    const loaded = await runOnce(args);
    expect(loaded.sha).toBe(idle.sha);
    expect(loaded.quality).toEqual(idle.quality);
  } finally {
    stopBurners();
  }
  return (idle.quality as { steps: { name: string }[] }).steps.map((s) => s.name);
}

describe('a run gives the same pruned file and quality numbers idle and beside two busy processes', () => {
  it('unstructured 80% with recovery auto (recovery rounds, reconstruction, BatchNorm statistics, distillation)', async () => {
    // a small work allowance keeps it to seconds and makes the allowance, not the clock, cut distillation
    const steps = await idleThenLoaded(['run', '--model', fixture('cnn-bn.onnx'), '--sparsity', '0.8', '--method', 'unstructured', '--recovery-work', '3']);
    expect(steps).toContain('recover:round-1');
    expect(steps.some((s) => s === 'recover:reconstruct' || s === 'recover:distill')).toBe(true);
  }, 180_000);

  it('structured 30% with recovery auto', async () => {
    const steps = await idleThenLoaded(['run', '--model', fixture('cnn-bn.onnx'), '--sparsity', '0.3', '--method', 'structured', '--round-to', '4', '--recovery-work', '3']);
    expect(steps).toContain('recover:reconstruct');
  }, 180_000);
});

describe('the wall-clock safety stop', () => {
  it('when it fires, the ledger records where (cut_short), the notes and ledger.md say so, and the verdict is at least warn', async () => {
    const out = tempDir();
    // a limit no recovery meets: the stop has fired by the first layer
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', data, '--calib', calib, '--sparsity', '0.5', '--recovery', 'reconstruct', '--recovery-time-budget', '0.001', '--out', out, '--runs', '3', '--warmup', '1', '--batch-sizes', '1', '--quiet']);
    expect([0, 1]).toContain(r.code);
    const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
    const m = ledger.models[0];
    expect(m.cut_short).toEqual({ stage: 'reconstruct', limit_s: 0.001 });
    expect(m.verdict).not.toBe('pass');
    expect(m.notes?.some((n) => n.startsWith('cut short: the recovery-time-budget safety stop (0.001 s) fired during reconstruct'))).toBe(true);
    expect(fs.readFileSync(path.join(out, 'ledger.md'), 'utf8')).toContain('cut short: the recovery-time-budget safety stop (0.001 s) fired during reconstruct');
  }, 60_000);
});
