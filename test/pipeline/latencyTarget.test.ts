import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { modelCost } from '../../src/onnx/flops.js';
import { MAX_CORRECTIONS } from '../../src/prune/structured/latencyTarget.js';
import { loadModel } from '../../src/onnx/model.js';
import { runCli } from '../support/cli.js';
import { head } from '../support/exportRuns.js';
import { fixture, tempDir } from '../support/fixtures.js';

const FAST = ['--warmup', '1', '--runs', '3', '--batch-sizes', '1', '--threads', '1', '--recovery', 'none', '--quiet'];

describe('prune-guard run --target-speedup', () => {
  it('allocates by measured latency, records every attempt with its measured speedup, and ships one of them', async () => {
    const out = tempDir();
    const r = await runCli(['run', '--model', fixture('cnn-bn.onnx'), '--data', fixture('fmnist-test.npz'), '--method', 'structured', '--target-speedup', '1.5x', '--out', out, ...FAST]);
    expect(r.stderr).not.toMatch(/error/i);
    const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
    expect(validateLedger(ledger)).toEqual([]);
    const m = ledger.models[0];
    const t = m.allocation!.target!;
    expect(t.kind).toBe('speedup');
    expect(t.value).toBe(1.5);
    expect(t.attempts.length).toBeGreaterThanOrEqual(1);
    expect(t.attempts.length).toBeLessThanOrEqual(MAX_CORRECTIONS + 1);
    expect(['met', 'limit', 'unreachable', 'unchanged']).toContain(t.outcome);
    // the attempt that ships is the prune step; every other attempt is a step of its own
    expect(t.attempts[t.shipped].step).toBe('prune');
    const names = m.steps.map((s) => s.name);
    for (const a of t.attempts) expect(names).toContain(a.step);
    // the shipped file is the pruned model whose MACs the record states
    expect(modelCost(loadModel(m.pruned).proto).macs).toBe(t.attempts[t.shipped].macs);
    expect(m.allocation!.latency!.layers.length).toBeGreaterThan(0);
    // without calibration data the cut's spread is not searched
    expect(t.candidates).toBeUndefined();
    if (t.outcome === 'met') expect(t.attempts[t.shipped].speedup).toBeGreaterThanOrEqual(1.5);
    // a target the loop could not meet is said, and never passes
    else {
      expect(m.verdict).not.toBe('pass');
      expect(m.notes?.some((n) => n.startsWith('latency target not met'))).toBe(true);
    }
  }, 120_000);
});

describe('prune-guard run --target-speedup with labelled calibration data', () => {
  it('tries cuts from uneven to even and the uniform cut for the first budget and ships the best by held-out calibration score among those the table says reach it', async () => {
    const out = tempDir();
    const r = await runCli(['run', '--model', fixture('cnn-bn.onnx'), '--data', head(fixture('fmnist-test.npz'), 200), '--calib', head(fixture('fmnist-calib.npz'), 64), '--method', 'structured', '--target-speedup', '1.5x', '--out', out, ...FAST]);
    expect(r.stderr).not.toMatch(/error/i);
    const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
    expect(validateLedger(ledger)).toEqual([]);
    const a = ledger.models[0].allocation!;
    const t = a.target!;
    const c = t.candidates!;
    expect(c.map((k) => [k.spread, k.evenness])).toEqual([['capped', 0], ['capped', 1 / 3], ['capped', 2 / 3], ['capped', 1], ['uniform', 1]]);
    // tighter caps as the evenness grows, the loosest the run allows at 0
    expect(c[0].max_group_ratio).toBe(1);
    for (let i = 1; i < 4; i++) expect(c[i].max_group_ratio).toBeLessThanOrEqual(c[i - 1].max_group_ratio);
    // whether the table's prediction reaches the budget depends on the widths' measured times on this
    // runner; what a candidate says of it must match its own prediction
    for (const k of c) expect(k.reached).toBe(k.predicted_ms <= t.attempts[0].budget_ms);
    // the chosen one reaches the budget if any does, and has the lowest held-out NLL among those that
    // do (ties: the earlier); attempt 1 is it
    const pool = c.some((k) => k.reached) ? c.filter((k) => k.reached) : c;
    const best = Math.min(...pool.map((k) => k.calib_nll));
    expect(c[t.chosen!].reached).toBe(c.some((k) => k.reached));
    expect(c[t.chosen!].calib_nll).toBe(best);
    expect(c.findIndex((k) => pool.includes(k) && k.calib_nll === best)).toBe(t.chosen);
    expect(t.attempts[0].macs).toBe(c[t.chosen!].macs);
    // every attempt keeps the chosen spread, and no group lost more than its cap
    expect([a.latency!.spread, a.latency!.evenness]).toEqual([c[t.chosen!].spread, c[t.chosen!].evenness]);
    expect(fs.readFileSync(path.join(out, 'ledger.md'), 'utf8')).toMatch(/How the cut is spread/);
  }, 120_000);
});

describe('a model whose input batch is fixed', () => {
  it('probes channel widths and times the latency target at the batch the model takes, whatever --batch-sizes asks', async () => {
    const out = tempDir();
    // cnn-batch1 takes one sample per run: batch 8 cannot be fed to it
    const r = await runCli(['run', '--model', fixture('exports/cnn-batch1.onnx'), '--data', head(fixture('fmnist-test.npz'), 200), '--method', 'structured', '--target-speedup', '1.2x', '--round-to', '0', '--out', out, ...FAST, '--batch-sizes', '8']);
    expect(r.stderr).not.toMatch(/internal error|invalid dimensions/i);
    const m = (JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger).models[0];
    expect(m.eval.fixed_batch).toBe(1);
    expect(m.allocation!.rounding).toBe('measured');
    expect(m.allocation!.batches).toEqual([1]);
    expect(m.allocation!.probes!.every((p) => p.batch === 1)).toBe(true);
    expect(m.allocation!.target!.batch).toBe(1);
    for (const s of m.steps) expect(s.latency_by_batch.map((l) => l.batch)).toEqual([1]);
  }, 120_000);
});
