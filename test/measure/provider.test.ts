import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveProvider } from '../../src/measure/provider.js';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';

const hasGpu = fs.existsSync('/dev/nvidia0');

describe.skipIf(hasGpu)('execution provider on a machine without CUDA', () => {
  it('cpu needs no probe', async () => {
    expect(await resolveProvider('cpu', fixture('mlp.onnx'))).toEqual({ provider: 'cpu' });
  });
  it('auto falls back to CPU and says why', async () => {
    const r = await resolveProvider('auto', fixture('mlp.onnx'));
    expect(r.provider).toBe('cpu');
    expect(r.note).toMatch(/measured on CPU because/);
  });
  it('cuda is a one-line user error (exit 2) and writes nothing', async () => {
    const out = path.join(tempDir(), 'out');
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-calib.npz'), '--out', out, '--execution-provider', 'cuda']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error: --execution-provider cuda: .*; run on a GPU runner/);
    expect(fs.existsSync(out)).toBe(false);
  });
  it('auto records CPU and the note in the ledger', async () => {
    const out = path.join(tempDir(), 'out');
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-calib.npz'), '--out', out, '--execution-provider', 'auto', '--runs', '3', '--warmup', '0', '--quiet']);
    expect(r.code).not.toBe(2);
    const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8'));
    expect(ledger.runtime.provider).toBe('cpu');
    expect(ledger.runtime.notes[0]).toMatch(/execution provider auto: measured on CPU/);
    expect(fs.readFileSync(path.join(out, 'ledger.md'), 'utf8')).toContain('measured on CPU because');
  });
});
