import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/loadConfig.js';
import { UserError } from '../../src/errors.js';
import type { Ledger, ModelLedger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { loadModel } from '../../src/onnx/model.js';
import { tensorToFloat32 } from '../../src/onnx/tensor.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { cubicSchedule } from '../../src/prune/schedule.js';
import { countSparsity } from '../../src/prune/sparsity.js';
import { runCli, type CliResult } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { onnxCheckAll } from '../support/onnxChecker.js';

const FAST = ['--warmup', '1', '--runs', '3', '--batch-sizes', '1'];
const MLP = ['--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz')];
const NONE = { exclude: [], keepFirstLayer: false, keepLastLayer: false };

function ledgerOf(out: string): Ledger {
  return JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
}

function weightsOf(file: string): Map<string, Float32Array> {
  const index = new GraphIndex(loadModel(file).proto.graph!);
  const names = prunableWeights(loadModel(fixture('mlp.onnx')).proto, NONE).map((w) => w.initializer);
  return new Map(names.map((n) => [n, tensorToFloat32(index.initializers.get(n)!)]));
}

describe('gradual schedule with reconstruction after every step (fixture MLP, 3 steps to 80%)', () => {
  const out = tempDir();
  let result: CliResult;
  let model: ModelLedger;
  beforeAll(async () => {
    result = await runCli(['run', ...MLP, '--sparsity', '0.8', '--recovery', 'reconstruct', '--schedule', 'gradual', '--schedule-steps', '3', '--schedule-patience', '3', '--out', out, ...FAST]);
    model = ledgerOf(out).models[0];
  }, 180_000);

  it('warns (the shipped 80% step straddles the accuracy limits) and exits 0, and the ledger follows the published schema', () => {
    expect(result.stderr).not.toMatch(/internal error/);
    expect(model.verdict).toBe('warn');
    expect(result.code).toBe(0);
    expect(validateLedger(ledgerOf(out))).toEqual([]);
  });

  it('runs the cubic schedule and records every step, prune and recovery, in the ledger', () => {
    const s = model.schedule!;
    expect(s.targets).toEqual(cubicSchedule(0, 0.8, 3));
    expect(s.steps.map((r) => r.index)).toEqual([1, 2, 3]);
    expect(s.stopped_early).toBeNull();
    expect(model.steps.slice(0, 7).map((x) => x.name)).toEqual(['dense', 'prune@1', 'recover:reconstruct@1', 'prune@2', 'recover:reconstruct@2', 'prune@3', 'recover:reconstruct@3']);
    for (const r of s.steps) {
      // the sparsity in the row is what the saved file holds, against the dense weight counts
      const counted = countSparsity(loadModel(r.artifact).proto, prunableWeights(loadModel(fixture('mlp.onnx')).proto, NONE));
      expect(r.sparsity).toBeCloseTo(counted.overall, 12);
      expect(Math.abs(r.sparsity - r.target)).toBeLessThan(0.005);
      expect(r.step).toBe(`recover:reconstruct@${r.index}`);
      expect(r.budgets.map((b) => b.name)).toEqual(model.budgets.map((b) => b.name));
    }
  });

  it('keeps masks monotone: every weight zero at one step stays zero at every later step', () => {
    const files = model.steps.filter((x) => x.name !== 'dense' && x.name !== 'ship').map((x) => x.artifact);
    expect(files.length).toBe(6);
    for (let i = 1; i < files.length; i++) {
      const before = weightsOf(files[i - 1]);
      const after = weightsOf(files[i]);
      let zeros = 0;
      const revived: string[] = [];
      for (const [name, a] of before) {
        const b = after.get(name)!;
        for (let j = 0; j < a.length; j++) {
          if (a[j] !== 0) continue;
          zeros++;
          if (b[j] !== 0) revived.push(`${name}[${j}]`);
        }
      }
      // one assertion per file pair: one per weight made this the slowest test of the suite
      expect(revived, `nonzero again in ${files[i]}`).toEqual([]);
      expect(zeros).toBeGreaterThan(0);
    }
  });

  it('ships the sparsest step with no failed budget, copied byte for byte, and names the dense model as rollback', () => {
    const s = model.schedule!;
    const passing = s.steps.filter((r) => r.budgets.every((b) => b.verdict !== 'fail'));
    const chosen = s.steps.find((r) => r.index === s.chosen)!;
    // reconstruction keeps every step within the default budgets, so the last and sparsest ships
    expect(passing.map((r) => r.index)).toEqual([1, 2, 3]);
    expect(s.chosen).toBe(3);
    expect(chosen.sparsity).toBe(Math.max(...passing.map((r) => r.sparsity)));
    expect(model.verdict).toBe(chosen.verdict);
    expect(fs.readFileSync(model.pruned).equals(fs.readFileSync(chosen.artifact))).toBe(true);
    expect(model.steps.at(-1)!.accuracy).toBe(chosen.accuracy);
    expect(model.budgets.map((b) => b.verdict)).toEqual(chosen.budgets.map((b) => b.verdict));
    expect(s.rollback).toBe(fixture('mlp.onnx'));
    const md = fs.readFileSync(path.join(out, 'ledger.md'), 'utf8');
    expect(md).toContain('**Schedule**');
    expect(md).toContain(`Ships step ${s.chosen}`);
    expect(md).toMatch(/rollback artifact/);
  });

  it('every schedule step passes onnx.checker', () => {
    expect(() => onnxCheckAll(model.schedule!.steps.map((r) => r.artifact))).not.toThrow();
  });
});

describe('gradual schedule early stops', () => {
  it('stops after the first step when the size budget is already met, and ships it', async () => {
    const out = tempDir();
    const limit = fs.statSync(fixture('mlp.onnx')).size + 50_000;
    const r = await runCli(['run', ...MLP, '--sparsity', '0.9', '--recovery', 'none', '--schedule', 'gradual', '--schedule-steps', '4', '--budget', `max-size-bytes=${limit}`, '--out', out, ...FAST]);
    expect(r.stderr).not.toMatch(/internal error/);
    const ledger = ledgerOf(out);
    const s = ledger.models[0].schedule!;
    expect(validateLedger(ledger)).toEqual([]);
    expect(s.steps).toHaveLength(1);
    expect(s.stopped_early).toMatchObject({ after_step: 1, reason: 'budgets-met' });
    expect(s.steps[0].budgets.find((b) => b.name === 'max-size-bytes')!.verdict).toBe('pass');
    expect(s.chosen).toBe(1);
    expect(ledger.models[0].steps.map((x) => x.name)).toEqual(['dense', 'prune@1']);
  }, 120_000);

  it('times each step against dense when a latency budget is set, and stops once it is met', async () => {
    const out = tempDir();
    // a limit no run of this tiny model gets near: the decision, not the speed, is under test
    const r = await runCli(['run', ...MLP, '--sparsity', '0.9', '--recovery', 'none', '--schedule', 'gradual', '--schedule-steps', '3', '--budget', 'p95-latency-ms=10000', '--out', out, ...FAST]);
    expect(r.stderr).toContain('latency (dense and schedule step)');
    const s = ledgerOf(out).models[0].schedule!;
    expect(s.stopped_early).toMatchObject({ after_step: 1, reason: 'budgets-met' });
    expect(s.steps[0].budgets.find((b) => b.name === 'p95-latency-ms')!.verdict).toBe('pass');
    expect(s.steps[0].p50_ms).toBeGreaterThan(0);
  }, 120_000);

  it('stops when calibration accuracy falls off a cliff (patience 1) and does not ship the cliff step', async () => {
    const out = tempDir();
    const r = await runCli(['run', ...MLP, '--sparsity', '0.97', '--recovery', 'none', '--schedule', 'gradual', '--schedule-steps', '4', '--out', out, ...FAST]);
    expect(r.stderr).not.toMatch(/internal error/);
    const ledger = ledgerOf(out);
    const s = ledger.models[0].schedule!;
    expect(validateLedger(ledger)).toEqual([]);
    expect(s.cliff_metric).toBe('calib');
    expect(s.stopped_early?.reason).toBe('cliff');
    expect(s.steps.length).toBeLessThan(4);
    const last = s.steps.at(-1)!;
    expect(s.dense_quality! - last.calib_accuracy!).toBeGreaterThan(s.cliff_threshold);
    for (const row of s.steps.slice(0, -1)) expect(s.dense_quality! - row.calib_accuracy!).toBeLessThanOrEqual(s.cliff_threshold);
    // the cliff step (2 of 4) loses more than the accuracy budget allows and never ships: step 1 does
    expect(s.steps.map((r) => r.index)).toEqual([1, 2]);
    expect(last.verdict).toBe('fail');
    expect(s.chosen).toBe(1);
  }, 120_000);
});

describe('gradual schedule with --bake-temperature', () => {
  it('bakes each step\'s candidate, while the next step prunes the model before the bake (no stacked Div)', async () => {
    const out = tempDir();
    const r = await runCli(['run', ...MLP, '--sparsity', '0.8', '--recovery', 'none', '--bake-temperature', '--schedule', 'gradual', '--schedule-steps', '2', '--schedule-patience', '2', '--out', out, ...FAST]);
    expect(r.stderr).not.toMatch(/internal error/);
    const m = ledgerOf(out).models[0];
    expect(m.schedule!.steps.map((x) => x.step)).toEqual(['calibrate:temperature@1', 'calibrate:temperature@2']);
    const divs = (file: string) => loadModel(file).proto.graph!.node.filter((n) => n.opType === 'Div').length;
    expect(divs(m.steps.find((x) => x.name === 'prune@2')!.artifact)).toBe(0);
    for (const row of m.schedule!.steps) expect(divs(row.artifact)).toBe(1);
    expect(divs(m.pruned)).toBe(1);
    expect(m.steps.at(-1)!.temperature?.baked).toBe(true);
  }, 120_000);
});

describe('gradual structured schedule (fixture CNN, channels)', () => {
  it('removes channels from the already-smaller model on fast widths so the cumulative ratio follows the schedule', async () => {
    const out = tempDir();
    const r = await runCli(['run', '--model', fixture('cnn-bn.onnx'), '--data', fixture('fmnist-test.npz'), '--sparsity', '0.5', '--method', 'structured', '--recovery', 'none', '--schedule', 'gradual', '--schedule-steps', '2', '--schedule-patience', '2', '--out', out, ...FAST]);
    expect(r.stderr).not.toMatch(/internal error/);
    const ledger = ledgerOf(out);
    expect(validateLedger(ledger)).toEqual([]);
    const s = ledger.models[0].schedule!;
    expect(s.cliff_metric).toBe('eval');
    expect(s.steps).toHaveLength(2);
    for (const row of s.steps) expect(Math.abs(row.channels_removed! - row.target)).toBeLessThan(0.03);
    expect(s.steps[1].size_bytes).toBeLessThan(s.steps[0].size_bytes);
    expect(s.steps[1].sparsity).toBeGreaterThan(s.steps[0].sparsity);
    // every step's kept counts are on the widths measured to run fast, as a one-shot prune's are
    const prunes = ledger.models[0].steps.filter((x) => x.name.startsWith('prune@'));
    expect(prunes).toHaveLength(2);
    for (const p of prunes) expect(p.description).toMatch(/snapped to the widths measured to run fast/);
  }, 120_000);
});

describe('gradual hybrid schedule (fixture CNN)', () => {
  it('cuts half the target in channels and tops up by magnitude to the target of the dense weights at every step', async () => {
    const out = tempDir();
    const r = await runCli(['run', '--model', fixture('cnn-bn.onnx'), '--data', fixture('fmnist-test.npz'), '--sparsity', '0.8', '--method', 'hybrid', '--recovery', 'none', '--schedule', 'gradual', '--schedule-steps', '2', '--schedule-patience', '2', '--out', out, ...FAST]);
    expect(r.stderr).not.toMatch(/internal error/);
    const ledger = ledgerOf(out);
    expect(validateLedger(ledger)).toEqual([]);
    const s = ledger.models[0].schedule!;
    expect(s.steps).toHaveLength(2);
    for (const row of s.steps) {
      expect(Math.abs(row.sparsity - row.target)).toBeLessThan(0.005);
      expect(Math.abs(row.channels_removed! - row.target / 2)).toBeLessThan(0.03);
    }
  }, 120_000);
});

describe('schedule settings', () => {
  const problem = (text: string): string => {
    try {
      parseConfig(text, '.prune-guard.yml');
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      return (e as Error).message;
    }
    throw new Error('expected a UserError');
  };

  it('reads schedule, schedule-steps and schedule-patience from the config file, oneshot by default', () => {
    expect(parseConfig('', 'x')).toMatchObject({ schedule: 'oneshot', scheduleSteps: 4, schedulePatience: 1 });
    expect(parseConfig('schedule: gradual\nschedule-steps: 6\nschedule-patience: 2\n', 'x')).toMatchObject({ schedule: 'gradual', scheduleSteps: 6, schedulePatience: 2 });
  });

  it('names the key and suggests the right one on a typo or a bad value', () => {
    expect(problem('schedule-step: 3\n')).toBe(".prune-guard.yml:1: unknown key 'schedule-step'; did you mean 'schedule-steps'?");
    expect(problem('schedule: cubic\n')).toMatch(/^\.prune-guard\.yml:1: 'schedule' must be one of oneshot, gradual/);
    expect(problem('schedule-steps: 0\n')).toMatch(/^\.prune-guard\.yml:1: 'schedule-steps' must be a whole number of 1 or more/);
  });

  it('refuses a gradual N:M schedule with exit 2 and one line, writing nothing', async () => {
    const out = path.join(tempDir(), 'never');
    const r = await runCli(['run', ...MLP, '--method', '2:4', '--schedule', 'gradual', '--out', out, ...FAST]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('prune-guard: error: --schedule gradual: --method 2:4 has one fixed sparsity (1 - N/M), so there is nothing to schedule; use --schedule oneshot');
    expect(fs.existsSync(out)).toBe(false);
  }, 60_000);

  it('refuses gradual structured pruning with --scope sensitivity with exit 2 and one line, writing nothing', async () => {
    const out = path.join(tempDir(), 'never');
    const r = await runCli(['run', ...MLP, '--method', 'structured', '--scope', 'sensitivity', '--schedule', 'gradual', '--out', out, ...FAST]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^prune-guard: error: --schedule gradual: --scope sensitivity is scheduled for --method unstructured only.*use --scope global or layer with gradual/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.existsSync(out)).toBe(false);
  }, 60_000);

  it('leaves a oneshot ledger as it was: no schedule field, dense then prune', async () => {
    const out = tempDir();
    await runCli(['run', ...MLP, '--sparsity', '0.5', '--recovery', 'none', '--schedule', 'oneshot', '--out', out, ...FAST]);
    const m = ledgerOf(out).models[0];
    expect(m.schedule).toBeUndefined();
    expect(m.steps.map((s) => s.name)).toEqual(['dense', 'prune']);
    expect(fs.readFileSync(path.join(out, 'ledger.md'), 'utf8')).not.toContain('**Schedule**');
  }, 60_000);
});

describe('gradual schedule with --scope sensitivity (fixture MLP, 2 steps to 80%, curves measured once)', () => {
  const out = tempDir();
  let result: CliResult;
  let model: ModelLedger;
  beforeAll(async () => {
    result = await runCli(['run', ...MLP, '--sparsity', '0.8', '--recovery', 'reconstruct', '--scope', 'sensitivity', '--schedule', 'gradual', '--schedule-steps', '2', '--schedule-patience', '2', '--out', out, ...FAST]);
    model = ledgerOf(out).models[0];
  }, 180_000);

  it('measures the curves once, allocates every step from them and keeps earlier zeros', () => {
    expect(result.stderr).not.toMatch(/internal error/);
    expect(validateLedger(ledgerOf(out))).toEqual([]);
    expect(result.stderr.match(/sensitivity: \d+ layers x \d+ ratios measured once/g)).toHaveLength(1);
    expect(model.sensitivity?.unit).toBe('weights');
    const steps = model.schedule!.steps;
    expect(steps.map((r) => r.index)).toEqual([1, 2]);
    for (const r of steps) expect(Math.abs(r.sparsity - r.target)).toBeLessThan(0.005);
    // per-layer ratios follow the curves, not one global threshold: they differ between layers
    const ratios = model.sensitivity!.layers.map((l) => l.allocated);
    expect(Math.max(...ratios) - Math.min(...ratios)).toBeGreaterThan(0.05);
    const first = weightsOf(steps[0].artifact);
    const last = weightsOf(steps[1].artifact);
    let revived = 0;
    for (const [name, a] of first) {
      const b = last.get(name)!;
      for (let j = 0; j < a.length; j++) if (a[j] === 0 && b[j] !== 0) revived++;
    }
    expect(revived).toBe(0);
  });
});
