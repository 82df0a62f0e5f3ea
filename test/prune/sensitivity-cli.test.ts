import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { loadModel } from '../../src/onnx/model.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { tensorToFloat32 } from '../../src/onnx/tensor.js';
import { findProblems } from '../../src/config/validate.js';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { onnxCheck } from '../support/onnxChecker.js';

const FAST = ['--runs', '3', '--warmup', '1', '--batch-sizes', '1', '--quiet'];

describe('--scope sensitivity (CLI)', () => {
  it('without --calib exits 2 with one line that names the fix, before writing anything', async () => {
    const out = path.join(tempDir(), 'out');
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--out', out, '--scope', 'sensitivity', ...FAST]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/--scope sensitivity: needs a calibration set.*--calib/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses methods it does not allocate for (hybrid, N:M) with one line', async () => {
    const out = path.join(tempDir(), 'out');
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--out', out, '--scope', 'sensitivity', '--method', '2:4', ...FAST]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--scope sensitivity: works with --method unstructured or structured/);
  });

  it('refuses a target above the per-layer cap up front', async () => {
    const out = path.join(tempDir(), 'out');
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--out', out, '--scope', 'sensitivity', '--sparsity', '0.97', ...FAST]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--sparsity 0.97: .*at most 0.95/);
  });

  it('is accepted in the config file', () => {
    expect(findProblems({ scope: 'sensitivity' })).toEqual([]);
  });

  it('end to end: the saved file holds the allocated per-layer sparsity, and the ledger validates', async () => {
    const out = tempDir();
    const r = await runCli(['run', '--model', fixture('cnn-bn.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--out', out, '--scope', 'sensitivity', '--sparsity', '0.6', '--recovery', 'none', ...FAST]);
    expect(r.stderr).not.toMatch(/internal error/);
    const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
    expect(validateLedger(ledger)).toEqual([]);
    const model = ledger.models[0];
    const s = model.sensitivity!;
    expect(s.layers.length).toBeGreaterThan(1);
    // zeros counted from the shipped file, layer by layer, against the allocation
    const index = new GraphIndex(loadModel(model.pruned).proto.graph!);
    let zeros = 0;
    let total = 0;
    for (const l of s.layers) {
      const v = tensorToFloat32(index.initializers.get(l.name)!);
      let z = 0;
      for (const x of v) if (x === 0) z++;
      expect(z).toBe(Math.round(l.allocated * l.size));
      zeros += z;
      total += v.length;
    }
    expect(zeros).toBe(Math.round(0.6 * total));
    // sensitivity differs between layers, so the allocation is not uniform
    expect(new Set(s.layers.map((l) => l.allocated)).size).toBeGreaterThan(1);
    expect(fs.readFileSync(path.join(out, 'ledger.md'), 'utf8')).toContain('xychart-beta');
    onnxCheck(model.pruned);
  });
});
