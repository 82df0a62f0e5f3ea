import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli.js';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { renderMarkdown } from '../../src/ledger/render.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { onnxCheck } from '../support/onnxChecker.js';

const FAST = ['--warmup', '1', '--runs', '3', '--batch-sizes', '32', '--quiet'];

async function run(args: string[]): Promise<{ code: number; stderr: string }> {
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const code = await main(['run', ...args]);
    return { code, stderr: stderr.mock.calls.map((c) => String(c[0])).join('') };
  } finally {
    stderr.mockRestore();
  }
}

describe('--quantize int8 --sparsity 0 on the fixture MLP', () => {
  const out = tempDir();
  let ledger: Ledger;
  beforeAll(async () => {
    const r = await run(['--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--sparsity', '0', '--quantize', 'int8', '--out', out, ...FAST]);
    expect(r.code).toBe(0);
    ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
  }, 60_000);

  it('ships the INT8 model as the last step after dense, within 1 pt of float, a quarter of the weight bytes', () => {
    const [dense, q] = ledger.models[0].steps;
    expect(ledger.models[0].steps.map((s) => s.name)).toEqual(['dense', 'quantize:int8']);
    expect(Math.abs(q.accuracy! - dense.accuracy!)).toBeLessThanOrEqual(0.01);
    expect(q.params).toBe(dense.params);
    expect(q.funnel!.bytes_ratio).toBeGreaterThan(0.24);
    expect(q.funnel!.bytes_ratio).toBeLessThan(0.27);
    expect(q.size_bytes).toBeLessThan(dense.size_bytes / 3);
  });

  it('records the kernels onnxruntime runs: every Gemm as QGemm, no float compute left', () => {
    const q = ledger.models[0].steps[1].quantize!;
    expect(q.kernels.layers.map((l) => l.kernel)).toEqual(['QGemm', 'QGemm', 'QGemm']);
    expect(q.kernels.float_compute_nodes).toBe(0);
    expect([7, 8]).toContain(q.weights.bits);
    expect(q.weights.reason).toMatch(/bit weights/);
    expect(q.calibration).toMatchObject({ method: 'minmax', samples: 512 });
  });

  it('writes a schema-valid ledger whose Markdown has the quantization section, and a file onnx.checker accepts', () => {
    expect(validateLedger(ledger)).toEqual([]);
    expect(renderMarkdown(ledger)).toMatch(/\*\*Quantization\*\*[\s\S]*QGemm/);
    onnxCheck(path.join(out, 'mlp.pruned.onnx'));
    // the dense input is the rollback artifact, untouched
    expect(ledger.models[0].steps[0].artifact).toBe(fixture('mlp.onnx'));
  });
});

describe('--quantize refusals', () => {
  it('without --calib, dynamic on a model without MatMul, and on an opset-9 model: one line, exit 2, nothing written', async () => {
    const cases: [string[], RegExp][] = [
      [['--model', fixture('mlp.onnx'), '--quantize', 'int8'], /--quantize int8: needs calibration data.*--calib/],
      [['--model', fixture('mlp.onnx'), '--calib', fixture('fmnist-calib.npz'), '--quantize', 'dynamic'], /mlp\.onnx: --quantize dynamic rewrites MatMul layers .* has none; use --quantize int8/],
      [['--model', fixture('exports/cnn-opset9.onnx'), '--calib', fixture('fmnist-calib.npz'), '--quantize', 'int8'], /cnn-opset9\.onnx: cannot quantize to INT8: opset 9/],
    ];
    for (const [args, message] of cases) {
      const out = tempDir();
      const r = await run([...args, '--data', fixture('fmnist-test.npz'), '--out', out, ...FAST]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n').length).toBe(1);
      expect(fs.readdirSync(out)).toEqual([]);
    }
  });
});
