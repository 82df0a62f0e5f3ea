import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Ledger } from '../src/ledger/types.js';
import { validateLedger } from '../src/ledger/validateLedger.js';
import { runCli } from './support/cli.js';
import { fixture, tempDir } from './support/fixtures.js';

describe('prune-guard run: min-speedup is decided by the paired sequential test', () => {
  it('a floor the pruned MLP cannot reach fails once its interval lies wholly below it, and the ledger records the pairs and the noise', async () => {
    const out = path.join(tempDir(), 'out');
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-calib.npz'), '--method', 'structured', '--sparsity', '0.5', '--round-to', '1', '--batch-sizes', '4', '--warmup', '1', '--runs', '3', '--max-runs', '60', '--budget', 'min-speedup=10x', '--out', out]);
    expect(r.code).toBe(1);
    const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
    expect(validateLedger(ledger)).toEqual([]);
    const b = ledger.models[0].budgets.find((x) => x.name === 'min-speedup')!;
    expect(b.verdict).toBe('fail');
    const seq = b.sequential!;
    expect(seq.outcome).toBe('beyond');
    expect(seq.stopped).toBe('decided');
    expect(seq.rounds).toBeLessThanOrEqual(60);
    expect(seq.noise).toBeGreaterThan(0);
    expect(b.ci![1]).toBeLessThan(10);
    // the timed rounds of dense and the shipped step are the pairs the decision took
    const steps = ledger.models[0].steps;
    expect(steps[0].latency!.runs).toBe(seq.rounds);
    expect(steps[steps.length - 1].latency!.runs).toBe(seq.rounds);
    const md = fs.readFileSync(path.join(out, 'ledger.md'), 'utf8');
    expect(md).toMatch(/short of the 10\.00x limit: interval \[\d+\.\d\dx, \d+\.\d\dx\] wholly below it after \d+ interleaved rounds/);
  }, 60_000);
});
