import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/schema.js';
import { loadDataset, sliceBatch } from '../../src/data/dataset.js';
import { silentProgress } from '../../src/io/progress.js';
import { loadModel, saveModel } from '../../src/onnx/model.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { setTensorFloat32, tensorDims, tensorToFloat32 } from '../../src/onnx/tensor.js';
import { CALIB_TOLERANCE, chooseActivations, eligiblePlans, pickPlan, quantizeStep } from '../../src/pipeline/quantizeStep.js';
import { fixture, tempDir } from '../support/fixtures.js';

describe('the quantize:int8 step', () => {
  it('puts back in float the layer whose quantization error the calibration set cannot afford, and says why', async () => {
    // one weight per row of the middle Gemm a thousand times its neighbours: per-channel int8 rounds
    // the rest of the row to zero, so that layer alone wrecks the quantized model
    const model = loadModel(fixture('mlp.onnx')).proto;
    const w = model.graph!.initializer.find((t) => t.name === 'net.3.weight')!;
    const [rows, cols] = tensorDims(w);
    const v = tensorToFloat32(w);
    for (let r = 0; r < rows; r++) v[r * cols] = 1000 * Math.abs(v[r * cols + 1]) + 5;
    setTensorFloat32(w, v);
    const dir = tempDir();
    const source = path.join(dir, 'outlier.onnx');
    saveModel(model, source);
    const all = loadDataset(fixture('fmnist-calib.npz'), modelInputs(model, source), { requireLabels: false });
    const calib = { ...all, count: 256, inputs: sliceBatch(all, 0, 256), labels: all.labels?.subarray(0, 256) ?? null };
    const r = await quantizeStep({ source, calib, config: { ...DEFAULT_CONFIG, quantize: 'int8', batchSizes: [1] }, artifact: path.join(dir, 'q.onnx'), progress: silentProgress, provider: 'cpu' });
    const back = r.info.float_layers.find((f) => f.reason === 'error');
    expect(back?.node).toBe('/net/net.3/Gemm');
    expect(r.info.kernels.layers.find((l) => l.node === '/net/net.3/Gemm')!.integer).toBe(false);
    expect(r.info.calib_quality!.quantized).toBeGreaterThanOrEqual(r.info.calib_quality!.float - 0.005);
  }, 30_000);
});

describe('which INT8 plans may ship', () => {
  const plan = (name: string, keep_float: string[], calib_quality: number) => ({ name, keep_float, calib_quality });
  const names = (e: { plan: { name: string }; through: { name: string } }[]) => e.map((x) => `${x.plan.name} <- ${x.through.name}`);

  it('a plan keeping float every layer of a plan within tolerance may ship when it scored at most two predictions lower, and says through which', () => {
    // 256 samples: the first conv kept float scored two predictions fewer than all-INT8, which is as good as float
    const all = plan('all-int8', [], 0.9297);
    const first = plan('narrow-first-layer-float', ['stem'], 0.9297 - 2 / 256);
    expect(names(eligiblePlans([all, first], 0.9297, 256))).toEqual(['all-int8 <- all-int8', 'narrow-first-layer-float <- all-int8']);
    // three predictions below the tolerance is more than noise
    const worse = plan('narrow-first-layer-float', ['stem'], 0.9297 - CALIB_TOLERANCE - 3 / 256);
    expect(names(eligiblePlans([all, worse], 0.9297, 256))).toEqual(['all-int8 <- all-int8']);
  });

  it('a plan below tolerance that keeps float none of a passing plan\'s float layers may not', () => {
    const first = plan('narrow-first-layer-float', ['stem'], 0.93);
    const dw = plan('depthwise-float', ['dw1', 'dw2'], 0.93 - CALIB_TOLERANCE - 1 / 256);
    const all = plan('all-int8', [], 0.93 - CALIB_TOLERANCE - 1 / 256);
    expect(names(eligiblePlans([all, first, dw], 0.93, 256))).toEqual(['narrow-first-layer-float <- narrow-first-layer-float']);
  });

  it('with no plan within tolerance, none is eligible (the error fallback takes over)', () => {
    expect(eligiblePlans([plan('all-int8', [], 0.8), plan('both', ['stem', 'dw'], 0.85)], 0.93, 256)).toEqual([]);
  });
});

describe('which activation type ships', () => {
  // per-round log gains of int8 over uint8 around a centre, spread like a busy runner's rounds
  const rounds = (centre: number, spread: number) => Array.from({ length: 24 }, (_, i) => Math.log(centre) + spread * Math.sin(i * 2.4));

  it('int8 activations only when every plausible per-round gain is above 3%, at the same calibration quality', () => {
    expect(chooseActivations({ speedup: 1.9, quality: 0.93 }, { speedup: 2.3, quality: 0.93 }, rounds(1.2, 0.05), 256).type).toBe('int8');
    // a 5% median gain in rounds that scatter by 15%: not clear, uint8 stays
    const noisy = chooseActivations({ speedup: 1.9, quality: 0.93 }, { speedup: 2, quality: 0.93 }, rounds(1.05, 0.15), 256);
    expect(noisy.type).toBe('uint8');
    expect(noisy.record.reason).toMatch(/^uint8 activations: .*median gain per round with int8 -\d+% to \+\d+%.*clearly more than 3% faster$/);
    expect(chooseActivations({ speedup: 1.9, quality: 0.93 }, { speedup: 1.5, quality: 0.93 }, rounds(0.8, 0.05), 256).type).toBe('uint8');
    // too few rounds for any interval: the default
    expect(chooseActivations({ speedup: 1, quality: 0.93 }, { speedup: 2, quality: 0.93 }, [0.7, 0.7, 0.7], 256).type).toBe('uint8');
  });

  it('a clearly faster int8 that scored more than two predictions lower keeps uint8, and the reason says so', () => {
    expect(chooseActivations({ speedup: 1.5, quality: 0.93 }, { speedup: 2, quality: 0.93 - 2 / 256 }, rounds(1.3, 0.05), 256).type).toBe('int8');
    const lower = chooseActivations({ speedup: 1.5, quality: 0.93 }, { speedup: 2, quality: 0.93 - 3 / 256 }, rounds(1.3, 0.05), 256);
    expect(lower.type).toBe('uint8');
    expect(lower.record).toMatchObject({ uint8_speedup: 1.5, int8_speedup: 2, uint8_calib_quality: 0.93 });
    expect(lower.record.reason).toContain('1.17 pt lower');
  });
});

describe('which eligible INT8 plan ships', () => {
  // per-round times (ms) of a plan: a base time scaled by the load of each round, which every plan shares
  const load = Array.from({ length: 12 }, (_, i) => 1 + 0.4 * Math.abs(Math.sin(i * 1.7)));
  const plan = (name: string, keep_float: string[], ms: number, jitter = 0) => ({ name, keep_float, rounds: load.map((l, i) => ms * l * (1 + jitter * Math.sin(i * 2.9))) });

  it('a plan keeping more layers float ships only when it ran clearly faster than all-INT8 round by round', () => {
    const all = plan('all-int8', [], 10);
    expect(pickPlan([all, plan('narrow-first-layer-float', ['stem'], 6.8)]).name).toBe('narrow-first-layer-float');
    // 2% faster in every round: not the 3% it must buy
    expect(pickPlan([all, plan('narrow-first-layer-float', ['stem'], 9.8)]).name).toBe('all-int8');
    // 6% faster in the median but scattered by 10% round to round: noise, INT8 stays
    expect(pickPlan([all, plan('narrow-first-layer-float', ['stem'], 9.4, 0.1)]).name).toBe('all-int8');
  });

  it('the same rounds under a heavier load pick the same plan', () => {
    const busy = (p: ReturnType<typeof plan>) => ({ ...p, rounds: p.rounds.map((t, i) => t * (1 + (i % 3))) });
    for (const ms of [6.8, 9.4, 9.8, 12]) {
      const plans = [plan('all-int8', [], 10), plan('narrow-first-layer-float', ['stem'], ms)];
      expect(pickPlan(plans.map(busy)).name).toBe(pickPlan(plans).name);
    }
  });

  it('a plan with fewer float layers replaces one with more unless the one with more ran clearly faster', () => {
    const first = plan('narrow-first-layer-float', ['stem'], 10);
    expect(pickPlan([first, plan('all-int8', [], 10.2)]).name).toBe('all-int8');
    expect(pickPlan([first, plan('all-int8', [], 14)]).name).toBe('narrow-first-layer-float');
    // as many float layers: the later plan must run clearly faster too
    expect(pickPlan([first, plan('depthwise-float', ['dw'], 9.8)]).name).toBe('narrow-first-layer-float');
    expect(pickPlan([first, plan('depthwise-float', ['dw'], 7)]).name).toBe('depthwise-float');
  });
});

describe('the INT8 decisions on a rerun', () => {
  it('a rerun of the same files on this machine reads the plans\' timings from the cache, decides alike and ships the same file', async () => {
    const dir = tempDir();
    const cache = path.join(dir, 'cache');
    const before = process.env.PRUNE_GUARD_CACHE_DIR;
    process.env.PRUNE_GUARD_CACHE_DIR = cache;
    try {
      const source = fixture('cnn-bn.onnx');
      const all = loadDataset(fixture('fmnist-calib.npz'), modelInputs(loadModel(source).proto, source), { requireLabels: false });
      const calib = { ...all, count: 128, inputs: sliceBatch(all, 0, 128), labels: all.labels?.subarray(0, 128) ?? null };
      const config = { ...DEFAULT_CONFIG, quantize: 'int8' as const, batchSizes: [8] };
      const step = (name: string) => quantizeStep({ source, calib, config, artifact: path.join(dir, name), progress: silentProgress, provider: 'cpu' });
      const first = await step('a.onnx');
      expect(first.info.timing_cached).toBe(false);
      expect(fs.readdirSync(cache).length).toBe(1);
      const second = await step('b.onnx');
      expect(second.info.timing_cached).toBe(true);
      expect(second.info.variants).toEqual(first.info.variants);
      expect(second.info.activation_choice).toEqual(first.info.activation_choice);
      expect(fs.readFileSync(path.join(dir, 'b.onnx')).equals(fs.readFileSync(path.join(dir, 'a.onnx')))).toBe(true);
      // a cache entry under the right key whose rounds do not pair (one model timed fewer rounds) is measured again
      for (const f of fs.readdirSync(cache)) {
        const entry = JSON.parse(fs.readFileSync(path.join(cache, f), 'utf8')) as { value: number[][][] };
        entry.value[1][0].pop();
        fs.writeFileSync(path.join(cache, f), JSON.stringify(entry));
      }
      expect((await step('c.onnx')).info.timing_cached).toBe(false);
    } finally {
      if (before === undefined) delete process.env.PRUNE_GUARD_CACHE_DIR;
      else process.env.PRUNE_GUARD_CACHE_DIR = before;
    }
  }, 60_000);
});
