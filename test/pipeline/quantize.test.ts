import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli.js';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { renderMarkdown } from '../../src/ledger/render.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { onnxCheck } from '../support/onnxChecker.js';
import { cliInProcess, expectReproduced, exported, head } from '../support/exportRuns.js';
import { loadModel, saveModel } from '../../src/onnx/model.js';

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

  it('times the all-INT8 plan with uint8 and int8 activations and ships the type the record says, for the reason it gives', () => {
    const q = ledger.models[0].steps[1].quantize!;
    const c = q.activation_choice!;
    expect(c.uint8_speedup).toBeGreaterThan(0);
    expect(c.int8_speedup).toBeGreaterThan(0);
    expect(c.reason).toMatch(new RegExp(`^${q.activations} activations: the all-INT8 plan ran`));
    expect(renderMarkdown(ledger)).toContain(`- ${c.reason}`);
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
  it('without --calib, dynamic on a model without MatMul, an opset-9 model, float16 I/O or bfloat16 weights: one line, exit 2, nothing written', async () => {
    const cases: [string[], RegExp][] = [
      [['--model', fixture('mlp.onnx'), '--quantize', 'int8'], /--quantize int8: needs calibration data.*--calib/],
      [['--model', fixture('mlp.onnx'), '--calib', fixture('fmnist-calib.npz'), '--quantize', 'dynamic'], /mlp\.onnx: --quantize dynamic rewrites MatMul layers .* has none; use --quantize int8/],
      [['--model', fixture('exports/cnn-opset9.onnx'), '--calib', fixture('fmnist-calib.npz'), '--quantize', 'int8'], /cnn-opset9\.onnx: cannot quantize to INT8: opset 9/],
      // float16 I/O, and bfloat16 weights behind a Cast: static QDQ starts from float32, said before any work
      [['--model', fixture('exports/cnn-fp16.onnx'), '--calib', fixture('fmnist-calib.npz'), '--quantize', 'int8'], /cnn-fp16\.onnx: cannot quantize to INT8: input 'input' is float16, not float32; .*quantize the float32 export/],
      [['--model', fixture('exports/cnn-bf16w.onnx'), '--calib', fixture('fmnist-calib.npz'), '--quantize', 'int8', '--sparsity', '0.3'], /cnn-bf16w\.onnx: cannot quantize to INT8: the weight of '.+' is stored as bfloat16 behind a Cast, not float32/],
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

describe('--quantize on models as exported', () => {
  const TEST = head(fixture('fmnist-test.npz'), 300);
  const CALIB = head(fixture('fmnist-calib.npz'), 64);
  const QUICK = ['--warmup', '1', '--runs', '3', '--batch-sizes', '1', '--max-seconds', '5', '--quiet'];

  it('a model whose batch is fixed at 1 is calibrated, planned and timed at batch 1 after pruning', async () => {
    // latency asked at batch 8: the model takes 1, so every timing (the INT8 plans' too) runs at 1
    const r = await cliInProcess(['run', '--model', exported('cnn-batch1.onnx'), '--data', TEST, '--calib', CALIB, '--sparsity', '0.3', '--recovery', 'none', '--quantize', 'int8', ...QUICK, '--batch-sizes', '8']);
    expect([0, 1], r.stderr).toContain(r.code);
    const m = r.model!;
    expect(m.eval.fixed_batch).toBe(1);
    expect(m.steps.map((s) => s.name)).toEqual(['dense', 'prune', 'quantize:int8']);
    const [, pruned, q] = m.steps;
    expect(q.latency_by_batch.map((l) => l.batch)).toEqual([1]);
    expect(q.quantize!.kernels.layers.some((l) => l.integer)).toBe(true);
    expect(Math.abs(q.accuracy! - pruned.accuracy!)).toBeLessThanOrEqual(0.03);
    await expectReproduced(q, TEST, 'logits');
  }, 60_000);

  it('a multi-label sigmoid is quantized judged by its own labels, and --output picks the output of a two-output model', async () => {
    const multi = await cliInProcess(['run', '--model', exported('fmnist-multilabel.onnx'), '--data', head(exported('fmnist-multilabel-test.npz'), 300), '--calib', head(exported('fmnist-multilabel-calib.npz'), 64), '--sparsity', '0', '--quantize', 'int8', ...QUICK]);
    expect([0, 1], multi.stderr).toContain(multi.code);
    const [dense, q] = multi.model!.steps;
    expect(multi.model!.eval.task).toBe('multilabel');
    expect(q.per_label_f1).toHaveLength(5);
    expect(Math.abs(q.accuracy! - dense.accuracy!)).toBeLessThanOrEqual(0.03);
    expect(q.quantize!.calib_quality!.metric).toBe('accuracy');

    // cnn-opset13 with its pooled features as a second output
    const model = loadModel(exported('cnn-opset13.onnx')).proto;
    const gap = model.graph!.node.find((n) => n.opType === 'ReduceMean')!;
    model.graph!.output.push({ ...model.graph!.output[0], name: gap.output[0], type: undefined } as never);
    const two = path.join(tempDir(), 'two-outputs.onnx');
    saveModel(model, two);
    const picked = await cliInProcess(['run', '--model', two, '--data', TEST, '--calib', CALIB, '--sparsity', '0', '--quantize', 'int8', '--output', 'logits', ...QUICK]);
    expect([0, 1], picked.stderr).toContain(picked.code);
    expect(picked.model!.eval.output).toBe('logits');
    await expectReproduced(picked.model!.steps[1], TEST, 'logits', { outputName: 'logits' });
  }, 60_000);
});
