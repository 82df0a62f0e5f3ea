import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { refuseInputsInOutput } from '../../src/io/inputPaths.js';
import { sha256 } from '../hardening/cliProcess.js';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';

const FAST = ['--runs', '2', '--warmup', '0', '--batch-sizes', '1', '--quiet'];

describe('no input may sit inside the output folder', () => {
  it('an input inside, equal to, or reached by symlink into --out is refused; a sibling is not', () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    fs.symlinkSync(out, path.join(dir, 'link'));
    expect(() => refuseInputsInOutput(out, [{ flag: '--model', path: path.join(out, 'ledger.json') }])).toThrow(/--model .*ledger\.json: sits inside the output folder/);
    expect(() => refuseInputsInOutput(out, [{ flag: '--data', path: out }])).toThrow(/sits inside/);
    expect(() => refuseInputsInOutput(path.join(dir, 'link'), [{ flag: '--calib', path: path.join(out, 'c.npz') }])).toThrow(/--calib/);
    expect(() => refuseInputsInOutput(path.join(dir, 'new'), [{ flag: '--model', path: path.join(dir, 'new', 'm.onnx') }])).toThrow(/sits inside/);
    expect(() => refuseInputsInOutput(out, [{ flag: '--model', path: path.join(dir, 'out2', 'm.onnx') }])).not.toThrow();
  });

  async function refusedUnchanged(args: string[], input: string, pattern: RegExp): Promise<void> {
    const before = sha256(input);
    const r = await runCli([...args, ...FAST]);
    expect(r.code, r.stderr).toBe(2);
    const errors = r.stderr.split('\n').filter((l) => /error:/.test(l));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(pattern);
    expect(sha256(input)).toBe(before);
  }

  it('run --model OUT/ledger.json --out OUT is refused and the input is untouched', async () => {
    const out = tempDir();
    const model = path.join(out, 'ledger.json');
    fs.copyFileSync(fixture('mlp.onnx'), model);
    await refusedUnchanged(['run', '--model', model, '--data', fixture('fmnist-test.npz'), '--out', out], model, /--model .*ledger\.json: sits inside the output folder/);
    expect(fs.readdirSync(out)).toEqual(['ledger.json']);
  });

  it('an input named like the lock file is refused, never deleted as a stale lock', async () => {
    const out = tempDir();
    const model = path.join(out, '.prune-guard.lock');
    fs.copyFileSync(fixture('mlp.onnx'), model);
    await refusedUnchanged(['run', '--model', model, '--data', fixture('fmnist-test.npz'), '--out', out], model, /sits inside the output folder/);
  });

  it('compare --head OUT/ledger.json --out OUT is refused and the head model is untouched', async () => {
    const out = tempDir();
    const head = path.join(out, 'ledger.json');
    fs.copyFileSync(fixture('mlp.onnx'), head);
    await refusedUnchanged(['compare', '--base', fixture('mlp.onnx'), '--head', head, '--data', fixture('fmnist-test.npz'), '--out', out], head, /--head .*: sits inside the output folder/);
  });

  it('a config file inside --out is refused', async () => {
    const out = tempDir();
    const cfg = path.join(out, 'cfg.yml');
    fs.writeFileSync(cfg, 'sparsity: 0.5\n');
    await refusedUnchanged(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--config', cfg, '--out', out], cfg, /--config .*cfg\.yml: sits inside/);
  });
});
