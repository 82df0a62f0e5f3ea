import { describe, expect, it, vi } from 'vitest';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';

const FAST = ['--warmup', '1', '--runs', '3', '--batch-sizes', '1'];

// The saved artifact is checked with verifyNM; make that check find a broken group, as a bug would.
vi.mock('../../src/prune/nm.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/prune/nm.js')>();
  return {
    ...real,
    verifyNM: () => [{ initializer: 'W', row: 0, offset: 0, nonzero: 3, message: 'W: row 0, group at 0 has 3 nonzeros, more than 2 of 4' }],
  };
});

describe('a saved model that breaks its N:M pattern', () => {
  it('is an internal error (exit 3), not a ledger', async () => {
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--method', '2:4', '--out', tempDir(), '--quiet', ...FAST]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/internal error.*breaks the 2:4 pattern: W: row 0, group at 0 has 3 nonzeros/);
  });
});
