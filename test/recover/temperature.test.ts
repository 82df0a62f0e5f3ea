import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDataset, takeSamples } from '../../src/data/dataset.js';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { onnxruntime } from '../../src/onnx/runtime/ort.js';
import { loadModel, serializeModel } from '../../src/onnx/model.js';
import { DataType, floatToHalf, halfToFloat } from '../../src/onnx/tensor.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { bakeTemperature, calibrateTemperature, fitTemperature, scaledScores } from '../../src/recover/temperature.js';
import { sessionFromModel } from '../../src/onnx/runtime/session.js';
import { runCli } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { onnxCheck } from '../support/onnxChecker.js';

describe('fitTemperature', () => {
  it('finds the temperature that undoes overconfident logits and lowers NLL and ECE', () => {
    // labels drawn from softmax(z); the model reports 3 z, i.e. is overconfident by a factor of 3
    let s = 42;
    const rand = () => (s = (s * 16807) % 2147483647) / 2147483647;
    const n = 4000;
    const k = 5;
    const logits = new Float32Array(n * k);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const z = Array.from({ length: k }, () => 2 * (rand() - 0.5) * 2);
      const e = z.map(Math.exp);
      const sum = e.reduce((a, b) => a + b, 0);
      let u = rand() * sum;
      let y = 0;
      while (y < k - 1 && (u -= e[y]) > 0) y++;
      labels[i] = y;
      z.forEach((v, c) => (logits[i * k + c] = 3 * v));
    }
    const fit = fitTemperature(logits, labels, k);
    expect(fit.temperature).toBeGreaterThan(2.5);
    expect(fit.temperature).toBeLessThan(3.5);
    expect(fit.nll_after).toBeLessThan(fit.nll_before);
    expect(fit.ece_after).toBeLessThan(fit.ece_before);
    // a minimum: nudging T either way does not lower NLL
    for (const f of [0.97, 1.03]) expect(scaledScores(logits, labels, k, fit.temperature * f).nll).toBeGreaterThanOrEqual(fit.nll_after - 1e-9);
  });
});

describe('bakeTemperature', () => {
  it("the baked model's softmax equals softmax(logits / T), and it passes onnx.checker", async () => {
    const model = loadModel(fixture('cnn-bn.onnx')).proto;
    const inputs = modelInputs(model, 'cnn-bn');
    const calib = loadDataset(fixture('fmnist-calib.npz'), inputs, { requireLabels: true });
    const fit = await calibrateTemperature(model, calib);
    expect(fit.temperature).not.toBeCloseTo(1, 3);
    const baked = bakeTemperature(model, fit.temperature);
    expect(baked.graph!.output[0].name).toBe(model.graph!.output[0].name);
    const { ort } = onnxruntime();
    const few = takeSamples(calib, [0, 1, 2, 3]);
    const x = few.inputs.get('input')!;
    const run = async (m: typeof model) => {
      const s = await sessionFromModel(m);
      const r = await s.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.dims) });
      await s.release();
      return r[s.outputNames[0]].data as Float32Array;
    };
    const [a, b] = [await run(model), await run(baked)];
    const softmax = (v: Float32Array, o: number, t: number) => {
      const row = Array.from(v.subarray(o, o + 10), (z) => z / t);
      const m = Math.max(...row);
      const e = row.map((z) => Math.exp(z - m));
      const sum = e.reduce((p, q) => p + q, 0);
      return e.map((z) => z / sum);
    };
    for (let i = 0; i < 4; i++) {
      const want = softmax(a, i * 10, fit.temperature);
      softmax(b, i * 10, 1).forEach((p, c) => expect(p).toBeCloseTo(want[c], 6));
    }
    const file = path.join(tempDir(), 'baked.onnx');
    fs.writeFileSync(file, (await import('../../src/onnx/model.js')).serializeModel(baked));
    expect(() => onnxCheck(file)).not.toThrow();
  });
});

describe('bakeTemperature on a float16 model', () => {
  it('divides by T stored as float16, so the Div is well typed: outputs are the dense ones / T and the file passes onnx.checker', async () => {
    const model = loadModel(fixture('exports/cnn-fp16.onnx')).proto;
    const baked = bakeTemperature(model, 2);
    const t = baked.graph!.initializer.find((i) => i.name === 'prune_guard_temperature')!;
    expect(t.dataType).toBe(DataType.FLOAT16);
    const { ort } = onnxruntime();
    const x = Uint16Array.from({ length: 2 * 28 * 28 }, (_, i) => floatToHalf(Math.sin(i) * 1.5));
    const run = async (m: typeof model) => {
      const s = await sessionFromModel(m);
      const r = await s.run({ input: new ort.Tensor('float16', x, [2, 1, 28, 28]) });
      await s.release();
      return Array.from(r.logits.data as Uint16Array, halfToFloat);
    };
    const [dense, scaled] = [await run(model), await run(baked)];
    dense.forEach((v, i) => expect(scaled[i]).toBeCloseTo(v / 2, 2));
    const file = path.join(tempDir(), 'baked16.onnx');
    fs.writeFileSync(file, serializeModel(baked));
    expect(() => onnxCheck(file)).not.toThrow();
  });
});

describe('prune-guard run --bake-temperature', () => {
  it('ships the baked model as its own step and reports T with calibration ECE before and after', async () => {
    const out = tempDir();
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz'), '--sparsity', '0.5', '--recovery', 'none', '--bake-temperature', '--out', out, '--quiet', '--warmup', '1', '--runs', '5', '--batch-sizes', '1']);
    expect(r.stderr).not.toMatch(/error/i);
    const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
    expect(validateLedger(ledger)).toEqual([]);
    const steps = ledger.models[0].steps;
    expect(steps.map((s) => s.name)).toEqual(['dense', 'prune', 'calibrate:temperature']);
    const t = steps[2].temperature!;
    expect(t.baked).toBe(true);
    expect(t.calib_nll_after).toBeLessThanOrEqual(t.calib_nll_before);
    // dividing logits by a positive T never changes the argmax
    expect(steps[2].accuracy).toBe(steps[1].accuracy);
    expect(fs.readFileSync(path.join(out, 'mlp.pruned.onnx')).equals(fs.readFileSync(steps[2].artifact))).toBe(true);
  }, 120_000);

  it('is refused without a labelled calibration set', async () => {
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--bake-temperature', '--out', tempDir()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--bake-temperature: needs a labelled calibration set/);
  });
});
