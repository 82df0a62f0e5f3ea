import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { writeNpz } from '../src/data/npz.js';
import { fixture, tempDir } from './support/fixtures.js';
import { runCli } from './support/cli.js';

const dir = tempDir();
const out = path.join(dir, 'out');

/** A bad input exits 2 with exactly one line on stderr, naming the problem, and no stack trace. */
async function expectUsageError(args: string[], pattern: RegExp, cwd?: string): Promise<void> {
  const r = await runCli(args, { cwd });
  expect(r.code).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(fs.existsSync(path.join(out, 'ledger.json'))).toBe(false);
}

const base = (model: string, data: string) => ['run', '--model', model, '--data', data, '--out', out];

describe('bad input exits 2 with one clear line', () => {
  it('a truncated .onnx file', async () => {
    const bytes = fs.readFileSync(fixture('cnn-bn.onnx'));
    const f = path.join(dir, 'truncated.onnx');
    fs.writeFileSync(f, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    await expectUsageError(base(f, fixture('fmnist-test.npz')), /truncated\.onnx: .*(truncated|not a valid ONNX)/);
  });

  it('a data file whose shape does not match the model input', async () => {
    const f = path.join(dir, 'wrong-shape.npz');
    writeNpz(f, { x: { dtype: 'float32', shape: [4, 1, 32, 32], data: new Float32Array(4 * 32 * 32) }, y: { dtype: 'int64', shape: [4], data: new BigInt64Array(4) } });
    await expectUsageError(base(fixture('cnn-bn.onnx'), f), /wrong-shape\.npz: .*shape.*\[4,1,32,32\].*28/);
  });

  it('a data file without labels, judged as a classifier', async () => {
    const f = path.join(dir, 'no-labels.npz');
    writeNpz(f, { x: { dtype: 'float32', shape: [2, 1, 28, 28], data: new Float32Array(2 * 784) } });
    await expectUsageError([...base(fixture('cnn-bn.onnx'), f), '--task', 'classification'], /no-labels\.npz: no label array 'y'.*--task fidelity/);
  });

  it('a config typo names the key and suggests the right one', async () => {
    const cfg = path.join(dir, 'typo.yml');
    fs.writeFileSync(cfg, 'sparsity: 0.5\nbudgets:\n  acuracy-drop: 0.01\n');
    await expectUsageError([...base(fixture('cnn-bn.onnx'), fixture('fmnist-test.npz')), '--config', cfg], /typo\.yml:3: .*acuracy-drop.*did you mean 'accuracy-drop'/);
  });

  it('a missing model file, an unknown flag value and a missing required flag', async () => {
    await expectUsageError(base(path.join(dir, 'nope.onnx'), fixture('fmnist-test.npz')), /nope\.onnx: file not found/);
    await expectUsageError([...base(fixture('cnn-bn.onnx'), fixture('fmnist-test.npz')), '--sparsity', '1.5'], /--sparsity/);
    await expectUsageError(['run', '--data', fixture('fmnist-test.npz'), '--out', out], /--model/);
  });

  it('distillation without a calibration set to train on is refused up front', async () => {
    await expectUsageError([...base(fixture('cnn-bn.onnx'), fixture('fmnist-test.npz')), '--recovery', 'distill'], /--recovery distill: needs a calibration set/);
  });

  it('an unknown budget name suggests the closest', async () => {
    await expectUsageError([...base(fixture('cnn-bn.onnx'), fixture('fmnist-test.npz')), '--budget', 'acuracy-drop=0.01'], /accuracy-drop/);
  });
});

describe('help and version', () => {
  it('--version prints the package version and exits 0', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.resolve(__dirname, '../package.json'), 'utf8')).version);
  });

  it('run --help lists the contract flags', async () => {
    const r = await runCli(['run', '--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--model', '--data', '--calib', '--shift', '--sparsity', '--method', '--recovery', '--config', '--budget', '--out']) expect(r.stdout).toContain(flag);
  });
});


