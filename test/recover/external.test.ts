import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readNpz } from '../../src/data/npz.js';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { loadModel } from '../../src/onnx/model.js';
import { tensorToFloat32 } from '../../src/onnx/tensor.js';
import { runCli } from '../support/cli.js';
import { fixture, ROOT, tempDir } from '../support/fixtures.js';

const SCRIPT = path.join(ROOT, 'test/recover/commands/rewrite.ts');
const command = (mode: string) => `"${process.execPath}" --import tsx "${SCRIPT}" ${mode}`;

function run(mode: string, out: string) {
  return runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--sparsity', '0.6', '--recovery', 'command', '--recovery-command', command(mode), '--out', out, '--quiet', '--warmup', '1', '--runs', '5', '--batch-sizes', '1']);
}

describe('--recovery command', () => {
  it('hands the command the pruned model and masks, and measures what it wrote back as a step', async () => {
    const out = tempDir();
    const r = await run('scale', out);
    expect(r.stderr).toContain('rewrite: scale done');
    expect(r.stderr).not.toMatch(/error/i);
    const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
    expect(validateLedger(ledger)).toEqual([]);
    const steps = ledger.models[0].steps;
    expect(steps.map((s) => s.name)).toEqual(['dense', 'prune', 'recover:command']);
    expect(steps[2].sparsity).toBe(steps[1].sparsity);
    const masks = readNpz(path.join(out, 'steps', 'masks.npz'));
    expect([...masks.keys()].sort()).toEqual(['net.1.weight', 'net.3.weight', 'net.5.weight']);
    const p = new GraphIndex(loadModel(steps[1].artifact).proto.graph!).initializers.get('net.3.weight')!;
    const c = new GraphIndex(loadModel(steps[2].artifact).proto.graph!).initializers.get('net.3.weight')!;
    const [pv, cv] = [tensorToFloat32(p), tensorToFloat32(c)];
    const m = masks.get('net.3.weight')!.data;
    for (let i = 0; i < pv.length; i += 37) expect(cv[i]).toBeCloseTo(m[i] ? pv[i] * 1.01 : 0, 6);
    expect(fs.readFileSync(path.join(out, 'mlp.pruned.onnx')).equals(fs.readFileSync(steps[2].artifact))).toBe(true);
  }, 120_000);

  it.each([
    ['revive', /made \d+ pruned weights of 'net.1.weight' nonzero again/],
    ['reshape', /changed the shape of 'net.1.weight' from \[128,784\] to \[127,784\]/],
    ['nothing', /wrote no model at \$PRUNE_GUARD_MODEL_OUT/],
    ['fail', /exited with code 3/],
  ])('a command that does "%s" is a user error saying what went wrong', async (mode, message) => {
    const r = await run(mode, tempDir());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  }, 120_000);

  it('needs the command itself', async () => {
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--recovery', 'command', '--out', tempDir()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--recovery command: no command given; pass --recovery-command/);
  });
});
