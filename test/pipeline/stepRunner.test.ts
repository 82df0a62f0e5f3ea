/**
 * The step runner in process, on a hand-built Gemm classifier: the prune-and-recover unit, and the three
 * strategies made of it (one shot, recovery rounds, a gradual schedule) through runPipeline, which
 * writes artifacts only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type Config } from '../../src/config/schema.js';
import { loadDataset, type Dataset } from '../../src/data/dataset.js';
import { writeNpz } from '../../src/data/npz.js';
import { silentProgress } from '../../src/io/progress.js';
import { resolveBudgets } from '../../src/ledger/budgets.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { getMetadata, loadModel, saveModel } from '../../src/onnx/model.js';
import type { ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { tensorToFloat32 } from '../../src/onnx/tensor.js';
import { magnitudePrune } from '../../src/prune/magnitude.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { stepFile } from '../../src/recover/runRecovery.js';
import { runPipeline } from '../../src/pipeline/run.js';
import { recoveryKind, stepName, type StepKind } from '../../src/pipeline/steps.js';
import { pruneAndRecover } from '../../src/pipeline/unit.js';
import { oneOpModel, seededWeights } from '../support/buildModel.js';
import { tempDir } from '../support/fixtures.js';

const IN = 16;
const OUT = 10;
const ALL = { exclude: [], keepFirstLayer: false, keepLastLayer: false };

/** A one-Gemm classifier and data labelled by its own argmax, a tenth of the labels moved to the next class. */
function tinyTask(dir: string): { model: string; data: string; calib: string; proto: ModelProto } {
  const proto = oneOpModel({ opType: 'Gemm', x: ['N', IN], weight: { dims: [OUT, IN], values: seededWeights(OUT * IN, 3) }, y: ['N', OUT], ints: { transB: 1 } });
  const w = seededWeights(OUT * IN, 3);
  const write = (name: string, n: number, seed: number): string => {
    const x = seededWeights(n * IN, seed);
    const y = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      let best = 0;
      let top = -Infinity;
      for (let o = 0; o < OUT; o++) {
        let s = 0;
        for (let k = 0; k < IN; k++) s += x[i * IN + k] * w[o * IN + k];
        if (s > top) [top, best] = [s, o];
      }
      y[i] = BigInt(i % 10 === 0 ? (best + 1) % OUT : best);
    }
    const file = path.join(dir, `${name}.npz`);
    writeNpz(file, { x: { dtype: 'float32', shape: [n, IN], data: x }, y: { dtype: 'int64', shape: [n], data: y } });
    return file;
  };
  const model = path.join(dir, 'tiny.onnx');
  saveModel(proto, model);
  return { model, data: write('test', 300, 11), calib: write('calib', 128, 12), proto };
}

const config = (over: Partial<Config>): Config => ({
  ...DEFAULT_CONFIG,
  scope: 'global',
  recovery: 'none',
  batchSizes: [1],
  latency: { ...DEFAULT_CONFIG.latency, warmup: 0, runs: 2, threads: 1 },
  evalBatchSize: 64,
  ...over,
});

const files = (dir: string): string[] => (fs.readdirSync(dir, { recursive: true }) as string[]).map((n) => n.split(path.sep).join('/')).sort();
const weightOf = (file: string): Float32Array => tensorToFloat32(new GraphIndex(loadModel(file).proto.graph!).initializers.get('W')!);
const zerosStayZero = (earlier: string, later: string): boolean => {
  const a = weightOf(earlier);
  const b = weightOf(later);
  return a.every((v, i) => v !== 0 || b[i] === 0);
};

describe('step records', () => {
  it('render to the ledger\'s public step names', () => {
    const cases: [StepKind, string][] = [
      [{ kind: 'dense' }, 'dense'],
      [{ kind: 'prune' }, 'prune'],
      [{ kind: 'prune', at: 2 }, 'prune@2'],
      [{ kind: 'recover', stage: 'reconstruct' }, 'recover:reconstruct'],
      [{ kind: 'recover', stage: 'bn-stats', at: 3 }, 'recover:bn-stats@3'],
      [{ kind: 'recover', stage: 'round', round: 1 }, 'recover:round-1'],
      [{ kind: 'calibrate:temperature', at: 1 }, 'calibrate:temperature@1'],
      [{ kind: 'ship' }, 'ship'],
      [{ kind: 'base' }, 'base'],
      [{ kind: 'head' }, 'head'],
    ];
    for (const [kind, name] of cases) expect(stepName(kind)).toBe(name);
    expect(stepName(recoveryKind('temperature', 2))).toBe('calibrate:temperature@2');
    expect(stepName(recoveryKind('distill'))).toBe('recover:distill');
  });
});

describe('pruneAndRecover', () => {
  let task: ReturnType<typeof tinyTask>;
  let calib: Dataset;
  beforeAll(() => {
    task = tinyTask(tempDir());
    calib = loadDataset(task.calib, modelInputs(task.proto, task.model), { requireLabels: false, modelPath: task.model });
  });
  const weights = () => prunableWeights(task.proto, ALL);
  const prune = (sparsity: number) => async () => ({ model: magnitudePrune(task.proto, weights(), sparsity, 'global').model, description: `to ${sparsity}`, denseWeights: weights(), notes: [] });

  it('prunes, stamps and saves; without recovery the prune step is the whole unit and what a next unit starts from', async () => {
    const dir = tempDir();
    const artifact = stepFile(dir, 1, 'prune');
    const u = await pruneAndRecover({ prune: prune(0.5), metadata: () => ({ 'prune-guard.method': 'unstructured' }), pruneArtifact: artifact, recovery: { dense: task.proto, calib, config: config({}), stepsDir: dir, progress: silentProgress, files: { data: task.data } }, at: 2 });
    expect(u.steps).toEqual([{ step: { kind: 'prune', at: 2 }, description: 'to 0.5', artifact }]);
    expect(u.chain).toBe(artifact);
    expect(getMetadata(loadModel(artifact).proto, 'prune-guard.method')).toBe('unstructured');
    expect(files(dir)).toEqual(['01-prune.onnx']);
  });

  it('recovers after pruning, each kept stage a typed record; a baked temperature ships but the chain goes on from the model before it', async () => {
    const dir = tempDir();
    const u = await pruneAndRecover({ prune: prune(0.6), pruneArtifact: stepFile(dir, 1, 'prune'), recovery: { dense: task.proto, calib, config: config({ recovery: 'reconstruct', bakeTemperature: true }), stepsDir: dir, progress: silentProgress, files: { data: task.data } } });
    expect(u.steps.map((s) => stepName(s.step))).toEqual(['prune', 'recover:reconstruct', 'calibrate:temperature']);
    expect(u.steps.map((s) => path.basename(s.artifact))).toEqual(['01-prune.onnx', '02-reconstruct.onnx', '03-temperature.onnx']);
    expect(u.steps[1].recovery!.calib_accuracy_after).toBeDefined();
    expect(u.steps[2].temperature!.baked).toBe(true);
    expect(u.chain).toBe(u.steps[1].artifact);
    // nothing unmeasured is stamped: no metadata was asked for
    expect(getMetadata(loadModel(u.steps[0].artifact).proto, 'prune-guard.method')).toBeUndefined();
  });
});

describe('strategies through runPipeline (artifacts only; the caller writes the ledger)', () => {
  let task: ReturnType<typeof tinyTask>;
  beforeAll(() => {
    task = tinyTask(tempDir());
  });
  const request = (out: string, over: Partial<Config>, budgets = resolveBudgets({}, [])) => ({ model: task.model, data: task.data, calib: task.calib, shifts: [], out, config: config(over), budgets });

  it('one shot: dense then one unit, the pruned model saved straight to the shipped file', async () => {
    const out = tempDir();
    const r = await runPipeline({ ...request(out, { sparsity: 0.5 }), calib: undefined }, silentProgress);
    expect(r.model.steps.map((s) => s.name)).toEqual(['dense', 'prune']);
    expect(r.model.pruned).toBe(path.join(out, 'tiny.pruned.onnx'));
    expect(r.model.steps[1].artifact).toBe(r.model.pruned);
    expect(r.model.steps[1].sparsity).toBeCloseTo(0.5, 2);
    expect(files(out)).toEqual(['tiny.pruned.onnx']);
    expect(getMetadata(loadModel(r.model.pruned).proto, 'prune-guard.target_sparsity')).toBe('0.5');
    expect(r.runtime.provider).toBe('cpu');
  });

  it('one shot with recovery: every stage kept under steps/, the last copied byte for byte to the shipped file', async () => {
    const out = tempDir();
    const r = await runPipeline(request(out, { sparsity: 0.6, recovery: 'reconstruct' }), silentProgress);
    expect(r.model.steps.map((s) => s.name)).toEqual(['dense', 'prune', 'recover:reconstruct']);
    expect(files(out)).toEqual(['steps', 'steps/01-prune.onnx', 'steps/02-reconstruct.onnx', 'tiny.pruned.onnx']);
    expect(fs.readFileSync(r.model.pruned)).toEqual(fs.readFileSync(path.join(out, 'steps/02-reconstruct.onnx')));
    expect(r.model.steps[2].recovery!.seconds).toBeGreaterThan(0);
  });

  it('rounds: a unit per intermediate round, each one measured step from the previous round\'s recovered model, then the final unit', async () => {
    const out = tempDir();
    const r = await runPipeline(request(out, { sparsity: 0.8, recovery: 'reconstruct', recoveryRounds: 3 }), silentProgress);
    const steps = r.model.steps;
    expect(steps.map((s) => s.name)).toEqual(['dense', 'recover:round-1', 'recover:round-2', 'prune', 'recover:reconstruct']);
    expect(steps[1].artifact).toBe(path.join(out, 'steps/round-01/02-reconstruct.onnx'));
    expect(steps[2].artifact).toBe(path.join(out, 'steps/round-02/02-reconstruct.onnx'));
    // the cubic schedule's targets rise to the final one, and no round revives an earlier zero
    expect(steps[1].sparsity).toBeLessThan(steps[2].sparsity);
    expect(steps[2].sparsity).toBeLessThan(steps[3].sparsity);
    expect(steps[3].sparsity).toBeCloseTo(0.8, 2);
    expect(zerosStayZero(steps[1].artifact, steps[2].artifact)).toBe(true);
    expect(zerosStayZero(steps[2].artifact, steps[3].artifact)).toBe(true);
    for (const s of steps.slice(1, 3)) expect(s.recovery!.calib_accuracy_before).toBeDefined();
    expect(r.model.notes).toContain('recovery-rounds: 3 rounds of prune + reconstruct recovery (56.3%, 77.0%, 80.0%), each with 1/3 of the recovery work allowance');
    expect(getMetadata(loadModel(r.model.pruned).proto, 'prune-guard.target_sparsity')).toBe('0.8');
    expect(files(out).filter((f) => f.endsWith('ledger.json') || f.endsWith('ledger.md'))).toEqual([]);
  });

  it('gradual: a unit per schedule step, measured as it goes, and the chosen step shipped', async () => {
    const out = tempDir();
    // budgets every step meets: no cliff, and the sparsest step ships
    const r = await runPipeline(request(out, { sparsity: 0.7, schedule: 'gradual', scheduleSteps: 3 }, resolveBudgets({ 'accuracy-drop': { limit: 1, written: '1' }, 'class-accuracy-drop': { limit: 1, written: '1' }, 'ece-increase': { limit: 1, written: '1' } }, [])), silentProgress);
    expect(r.model.steps.map((s) => s.name)).toEqual(['dense', 'prune@1', 'prune@2', 'prune@3']);
    const schedule = r.model.schedule!;
    expect(schedule.steps.map((s) => s.step)).toEqual(['prune@1', 'prune@2', 'prune@3']);
    expect(schedule.chosen).toBe(3);
    expect(schedule.stopped_early).toBeNull();
    const [, a, b, c] = r.model.steps.map((s) => s.artifact);
    expect(zerosStayZero(a, b) && zerosStayZero(b, c)).toBe(true);
    expect(fs.readFileSync(r.model.pruned)).toEqual(fs.readFileSync(c));
    expect(getMetadata(loadModel(c).proto, 'prune-guard.schedule_step')).toBe('3/3');
    expect(r.model.steps[1].description).toMatch(/^schedule step 1\/3, target \d+\.\d%: unstructured magnitude pruning/);
    expect(files(out).filter((f) => !f.startsWith('steps/'))).toEqual(['steps', 'tiny.pruned.onnx']);
  });
});
