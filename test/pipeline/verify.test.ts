import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import type { Ledger } from '../../src/ledger/types.js';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { firstSamples } from '../support/slice.js';

/** `prune-guard verify`: a run's ledger re-run from its reproducibility record. */

let dir: string;
let data: string;
let ledgerPath: string;
let recorded: Ledger;

beforeAll(async () => {
  dir = tempDir();
  // inputs of its own, so one can be changed after the run
  data = path.join(dir, 'data.npz');
  fs.copyFileSync(firstSamples(fixture('fmnist-test.npz'), 200), data);
  const calib = firstSamples(fixture('fmnist-calib.npz'), 64);
  const out = path.join(dir, 'out');
  const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', data, '--calib', calib, '--sparsity', '0.5', '--recovery', 'reconstruct', '--out', out, '--runs', '3', '--warmup', '1', '--batch-sizes', '1', '--quiet']);
  expect(r.stderr).not.toMatch(/error/);
  ledgerPath = path.join(out, 'ledger.json');
  recorded = JSON.parse(fs.readFileSync(ledgerPath, 'utf8')) as Ledger;
}, 120_000);

describe('the reproducibility record', () => {
  it('names the inputs by sha256, the settings, versions, quality threads, seeds and the pruned file', () => {
    expect(validateLedger(recorded)).toEqual([]);
    const r = recorded.reproduce!;
    expect(r.inputs.map((i) => i.flag)).toEqual(['--model', '--data', '--calib']);
    for (const i of r.inputs) expect(i.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(r.argv).not.toContain('--out');
    expect(r.versions.node).toBe(process.version);
    expect(r.quality_threads).toBe(1);
    expect(r.seeds).toEqual({ reconstruct_patches: 1, distill: 1, bootstrap: 0x5eed });
    expect(r.pruned_sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('prune-guard verify', () => {
  it('re-runs the recorded command and confirms the same pruned file and numbers (exit 0)', async () => {
    const r = await runCli(['verify', ledgerPath]);
    expect(r.stdout).toBe(`verified: ${ledgerPath} reproduced (the same pruned file and quality numbers)\n`);
    expect(r.code).toBe(0);
  }, 120_000);

  it('names each number that differs, one line each (exit 1)', async () => {
    const tampered: Ledger = JSON.parse(JSON.stringify(recorded));
    const last = tampered.models[0].steps.at(-1)!;
    last.accuracy = last.accuracy! + 0.01;
    tampered.reproduce!.pruned_sha256 = '0'.repeat(64);
    const copy = path.join(tempDir(), 'ledger.json');
    fs.writeFileSync(copy, JSON.stringify(tampered));
    const r = await runCli(['verify', copy]);
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^differs: pruned model sha256: recorded 0{16}, now [0-9a-f]{16}$/);
    expect(lines[1]).toMatch(new RegExp(`^differs: .*mlp\\.onnx: steps\\[${last.name.replace(/[[\]:]/g, '\\$&')}\\]\\.accuracy: recorded [\\d.]+, now [\\d.]+$`));
  }, 120_000);

  it('refuses in one line, exit 2, when an input changed since the run', async () => {
    const bytes = fs.readFileSync(data);
    try {
      fs.appendFileSync(data, Buffer.from([0]));
      const r = await runCli(['verify', ledgerPath]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^prune-guard: error: --data .*data\.npz: changed since the run \(sha256 [0-9a-f]{16} recorded, [0-9a-f]{16} now\); restore the recorded file to verify\n$/);
    } finally {
      fs.writeFileSync(data, bytes);
    }
  });

  it('refuses a ledger without a record in one line, exit 2', async () => {
    const plain: Ledger = JSON.parse(JSON.stringify(recorded));
    delete plain.reproduce;
    const copy = path.join(tempDir(), 'ledger.json');
    fs.writeFileSync(copy, JSON.stringify(plain));
    const r = await runCli(['verify', copy]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^prune-guard: error: .*ledger\.json: has no reproducibility record \('reproduce'\); only ledgers written by prune-guard run can be verified\n$/);
  });
});
