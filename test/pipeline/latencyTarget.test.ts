import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { modelCost } from '../../src/onnx/flops.js';
import { loadModel } from '../../src/onnx/model.js';
import { runCli } from '../support/cli.js';
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
    expect(t.attempts.length).toBeLessThanOrEqual(4);
    expect(['met', 'limit', 'unreachable', 'unchanged']).toContain(t.outcome);
    // the attempt that ships is the prune step; every other attempt is a step of its own
    expect(t.attempts[t.shipped].step).toBe('prune');
    const names = m.steps.map((s) => s.name);
    for (const a of t.attempts) expect(names).toContain(a.step);
    // the shipped file is the pruned model whose MACs the record states
    expect(modelCost(loadModel(m.pruned).proto).macs).toBe(t.attempts[t.shipped].macs);
    expect(m.allocation!.latency!.layers.length).toBeGreaterThan(0);
    if (t.outcome === 'met') expect(t.attempts[t.shipped].speedup).toBeGreaterThanOrEqual(1.5);
    // a target the loop could not meet is said, and never passes
    else {
      expect(m.verdict).not.toBe('pass');
      expect(m.notes?.some((n) => n.startsWith('latency target not met'))).toBe(true);
    }
  }, 120_000);
});
