import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/schema.js';
import { loadDataset, takeSamples } from '../../src/data/dataset.js';
import { silentProgress } from '../../src/io/progress.js';
import { loadModel, saveModel } from '../../src/onnx/model.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { magnitudePrune } from '../../src/prune/magnitude.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { runRecovery, type RecoveryOutcome } from '../../src/recover/runRecovery.js';
import { DISTILL_EPOCH_PASSES, distillEpochsThatFit, RECOVERY_PASSES, recoveryAllowance, safetyStop, WorkMeter, type Clock } from '../../src/recover/work.js';
import { fixture, tempDir } from '../support/fixtures.js';

describe('the recovery work allowance, sized from the model', () => {
  it('is RECOVERY_PASSES passes over the calibration set, capped at recovery-work GMAC, times the share', () => {
    // the fixture resnet: 20.2 MMAC a sample, 512 calibration samples
    const resnet = { macsPerSample: 20_183_936, calibSamples: 512 };
    expect(recoveryAllowance(resnet, 0)).toBe(RECOVERY_PASSES * 20_183_936 * 512);
    expect(recoveryAllowance(resnet, 5000)).toBe(RECOVERY_PASSES * 20_183_936 * 512);
    expect(recoveryAllowance(resnet, 1000)).toBe(1000e9);
    expect(recoveryAllowance(resnet, 1000, 1 / 4)).toBe(250e9);
    // a model 1000 times bigger is held to the cap, whatever machine it runs on
    expect(recoveryAllowance({ macsPerSample: 17.5e9, calibSamples: 512 }, 5000)).toBe(5000e9);
    // each round may solve every layer once: the solve work is added to the round's share of passes
    expect(recoveryAllowance({ ...resnet, solveWork: 3e9 }, 5000, 1 / 4)).toBe((RECOVERY_PASSES * 20_183_936 * 512) / 4 + 3e9);
    // a model with few MACs but wide layers (the fixture MLP: 0.1 MMAC a sample, a 784-column layer)
    expect(recoveryAllowance({ macsPerSample: 109_184, calibSamples: 512, solveWork: 30e9 }, 5000, 1 / 3)).toBeCloseTo((RECOVERY_PASSES * 109_184 * 512) / 3 + 30e9);
    // the cap holds whatever the solves
    expect(recoveryAllowance({ ...resnet, solveWork: 1e15 }, 5000, 1 / 4)).toBe(1250e9);
    // pure: the same facts give the same number
    expect(recoveryAllowance(resnet, 5000, 1 / 3)).toBe(recoveryAllowance({ ...resnet }, 5000, 1 / 3));
  });

  it('gives distillation the epochs that fit, at most the maximum, none when one does not', () => {
    const facts = { macsPerSample: 1e6, calibSamples: 100 };
    const epoch = DISTILL_EPOCH_PASSES * 1e8;
    expect(distillEpochsThatFit(facts, 30.5 * epoch, 30)).toBe(30);
    expect(distillEpochsThatFit(facts, 100 * epoch, 30)).toBe(30);
    expect(distillEpochsThatFit(facts, 12.5 * epoch, 30)).toBe(12);
    expect(distillEpochsThatFit(facts, 0.9 * epoch, 30)).toBe(0);
  });

  it('meters what stages charge and never goes below zero', () => {
    const m = new WorkMeter(100);
    m.charge(30);
    expect(m.left).toBe(70);
    m.charge(100);
    expect(m.left).toBe(0);
  });

  it('arms the safety stop on its own clock: no limit never fires', () => {
    let now = 0;
    const clock: Clock = () => now;
    const stop = safetyStop(10, clock);
    now = 9_000;
    expect(stop.passed()).toBe(false);
    now = 10_001;
    expect(stop.passed()).toBe(true);
    expect(stop.elapsedSeconds()).toBeCloseTo(10.001);
    expect(safetyStop(0, clock).passed()).toBe(false);
  });
});

describe('recovery under a slow clock', () => {
  const model = loadModel(fixture('cnn-bn.onnx')).proto;
  const inputs = modelInputs(model, 'cnn-bn.onnx');
  // 64 samples and 2 GMAC of work: reconstruction, BatchNorm statistics and a couple of distillation epochs run, in a few seconds
  const calib = takeSamples(loadDataset(fixture('fmnist-calib.npz'), inputs, { requireLabels: true }), Array.from({ length: 64 }, (_, i) => i * 7));
  const weights = prunableWeights(model, { exclude: [], keepFirstLayer: false, keepLastLayer: false });
  const pruned = magnitudePrune(model, weights, 0.8, 'global').model;

  async function recover(clock: Clock, limitSeconds: number): Promise<{ outcome: RecoveryOutcome; files: Buffer[]; dir: string }> {
    const dir = tempDir();
    const prunedArtifact = path.join(dir, 'steps', '01-prune.onnx');
    fs.mkdirSync(path.dirname(prunedArtifact), { recursive: true });
    saveModel(pruned, prunedArtifact);
    const outcome = await runRecovery({
      dense: model, pruned, prunedArtifact, denseWeights: weights, calib, config: { ...DEFAULT_CONFIG, recovery: 'auto', recoveryWork: 2 },
      files: { data: 'data.npz' }, stepsDir: path.join(dir, 'steps'), progress: silentProgress, stop: safetyStop(limitSeconds, clock),
    });
    return { outcome, files: outcome.steps.map((s) => fs.readFileSync(s.artifact)), dir };
  }
  // descriptions without their wall-clock seconds: the work done, stage by stage
  const work = (o: RecoveryOutcome) => o.steps.map((s) => [s.stage, s.description.replace(/\d+\.\d s\)/g, 'S s)'), s.info.calib_accuracy_after, s.info.calib_nll_after]);

  it('does the same work on a clock 1000 times slower than real time, and says nothing was cut short', async () => {
    const real = await recover(() => performance.now(), 1800);
    // every millisecond reads as a second: a machine 1000 times slower, well inside a day's safety stop
    const slow = await recover(() => performance.now() * 1000, 86_400);
    expect(real.outcome.cutShort).toBeUndefined();
    expect(slow.outcome.cutShort).toBeUndefined();
    expect(real.outcome.steps.map((s) => s.stage)).toEqual(['reconstruct', 'bn-stats', 'distill'].filter((s) => real.outcome.steps.some((x) => x.stage === s)));
    expect(real.outcome.steps.length).toBeGreaterThan(0);
    expect(work(slow.outcome)).toEqual(work(real.outcome));
    expect(slow.outcome.notes).toEqual(real.outcome.notes);
    expect(slow.files).toEqual(real.files);
  }, 60_000);

  it('cuts a run short only when the safety stop fires, and says where', async () => {
    let reads = 0;
    // each reading of the clock is a minute later: the stop fires at the first check after arming
    const cut = await recover(() => 60_000 * reads++, 30);
    expect(cut.outcome.cutShort).toEqual({ stage: 'reconstruct', limit_s: 30 });
  }, 60_000);
});
