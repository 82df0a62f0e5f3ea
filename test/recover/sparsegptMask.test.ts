import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/types.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { loadModel } from '../../src/onnx/model.js';
import { tensorToFloat32 } from '../../src/onnx/tensor.js';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';

const FAST = ['--warmup', '1', '--runs', '5', '--batch-sizes', '1'];

function zeroCounts(file: string): Map<string, { zeros: Set<number>; count: number }> {
  const index = new GraphIndex(loadModel(file).proto.graph!);
  const out = new Map<string, { zeros: Set<number>; count: number }>();
  for (const [name, t] of index.initializers) {
    if (t.dims.length < 2) continue;
    const v = tensorToFloat32(t);
    const zeros = new Set<number>();
    v.forEach((x, i) => x === 0 && zeros.add(i));
    out.set(name, { zeros, count: zeros.size });
  }
  return out;
}

describe('prune-guard run --criterion sparsegpt (unstructured)', () => {
  const out = tempDir();
  let ledger: Ledger;
  beforeAll(async () => {
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--sparsity', '0.8', '--recovery', 'reconstruct', '--criterion', 'sparsegpt', '--out', out, '--quiet', ...FAST]);
    expect(r.stderr).not.toMatch(/error/i);
    ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
  }, 120_000);

  it('moves which weights are zero but keeps every layer zero count, and says so in the step', () => {
    const [, prune, rec] = ledger.models[0].steps;
    expect(rec.name).toBe('recover:reconstruct');
    expect(rec.description).toMatch(/re-chose which weights are zero/);
    expect(rec.sparsity).toBe(prune.sparsity);
    const before = zeroCounts(prune.artifact);
    const after = zeroCounts(path.join(out, 'mlp.pruned.onnx'));
    let moved = 0;
    for (const [name, b] of before) {
      if (b.count === 0) continue;
      expect(after.get(name)!.count, name).toBe(b.count);
      for (const i of after.get(name)!.zeros) if (!b.zeros.has(i)) moved++;
    }
    expect(moved).toBeGreaterThan(0);
  });

  it('is refused where it cannot apply, in one line', async () => {
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--recovery', 'none', '--criterion', 'sparsegpt', '--out', path.join(tempDir(), 'o'), ...FAST]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--criterion sparsegpt: .*--recovery reconstruct or auto/);
    const s = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--method', 'structured', '--recovery', 'reconstruct', '--criterion', 'sparsegpt', '--out', path.join(tempDir(), 'o'), ...FAST]);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/--criterion sparsegpt: .*not --method structured/);
    const g = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--recovery', 'auto', '--schedule', 'gradual', '--criterion', 'sparsegpt', '--out', path.join(tempDir(), 'o'), ...FAST]);
    expect(g.code).toBe(2);
    expect(g.stderr).toMatch(/--schedule gradual: --criterion sparsegpt/);
  });
});
