import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { overallVerdict } from '../ledger/budgets.js';
import type { BudgetName, ModelLedger, ScheduleLedger, ScheduleStep } from '../ledger/types.js';
import { latencyStat } from '../measure/latency.js';
import { loadModel, saveModel, setMetadata } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { GraphIndex } from '../onnx/graph.js';
import { tensorToFloat32 } from '../onnx/tensor.js';
import { magnitudePrune } from '../prune/magnitude.js';
import { prunableWeights, type PrunableWeight } from '../prune/prunable.js';
import { pruneModel } from '../prune/pruneModel.js';
import { chooseStep, cubicSchedule, fellOffCliff, fractionOfRemaining } from '../prune/schedule.js';
import { countSparsity } from '../prune/sparsity.js';
import { pruneCounts, unstructuredSensitivityPlan } from '../prune/sensitivity/sensitivityPrune.js';
import { countChannels } from '../prune/structured/channels.js';
import { calibScore } from '../recover/calibScore.js';
import { runRecovery, stepFile } from '../recover/runRecovery.js';
import { VERSION } from '../version.js';
import { measureStep, type MeasuredStep, type StepContext } from './measureStep.js';
import type { Progress } from '../io/progress.js';
import { classChanges, writeLedger } from './ledgerFile.js';
import type { RunRequest, RunResult } from './request.js';
import { resolveScope } from '../prune/resolveScope.js';
import { timePair, timeSteps } from './timeSteps.js';
import { judgeWithIntervals, predictionShifts, shiftResults, type Judged } from './verdicts.js';

/** Budgets a schedule stops on once met: pruning further would only cost quality. */
const RESOURCE_BUDGETS: ReadonlySet<BudgetName> = new Set(['min-speedup', 'p95-latency-ms', 'max-size-bytes']);
const LATENCY_BUDGETS: ReadonlySet<BudgetName> = new Set(['min-speedup', 'p95-latency-ms']);
/** cliff threshold when no accuracy-drop budget is configured */
const DEFAULT_CLIFF = 0.02;

export interface GradualInput {
  req: RunRequest;
  dense: ModelProto;
  data: Dataset;
  shifts: { name: string; data: Dataset }[];
  calib?: Dataset;
  outPath: string;
  provider: { provider: 'cpu' | 'cuda'; note?: string };
}

/** Names of weights where a zero of `before` is nonzero in `after`: a schedule's masks must only grow. */
export function regrownWeights(before: ModelProto, after: ModelProto, names: readonly string[]): string[] {
  const a = new GraphIndex(before.graph!);
  const b = new GraphIndex(after.graph!);
  const broken: string[] = [];
  for (const name of names) {
    const ta = a.initializers.get(name);
    const tb = b.initializers.get(name);
    if (!ta || !tb) continue;
    const va = tensorToFloat32(ta);
    const vb = tensorToFloat32(tb);
    if (va.length !== vb.length) continue;
    for (let i = 0; i < va.length; i++) {
      if (va[i] === 0 && vb[i] !== 0) {
        broken.push(name);
        break;
      }
    }
  }
  return broken;
}

interface Row {
  index: number;
  target: number;
  channelsRemoved?: number;
  /** the schedule step's last measured step (what it hands on and what would ship) */
  final: MeasuredStep;
  calibAccuracy: number | null;
  judged?: Judged;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * `--schedule gradual`: prune in N steps of rising sparsity (cubic schedule), each step pruning the
 * previous step's recovered model read back from disk, recovering and measuring after each; stop early
 * once every latency/size budget is met or when quality falls off a cliff; ship the best step that meets
 * every budget. The dense input is never modified and stays the rollback artifact.
 */
export async function runGradual(input: GradualInput, progress: Progress): Promise<RunResult> {
  const { req, data, shifts, calib, outPath } = input;
  const { config, budgets } = req;
  const provider = input.provider.provider;
  // structured and hybrid cut channels: hybrid's channel share is half the target, as in one shot
  const structured = config.method === 'structured' || config.method === 'hybrid';
  const channelShare = config.method === 'hybrid' ? 0.5 : 1;
  const weights = prunableWeights(input.dense, { exclude: config.exclude, keepFirstLayer: config.keepFirstLayer, keepLastLayer: config.keepLastLayer });
  if (weights.length === 0) {
    throw new UserError(`${req.model}: no prunable Conv, ConvTranspose, Gemm or MatMul weights (after exclude globs); nothing to prune`);
  }
  const protectedTensors = protectedFor(input.dense, weights);
  const denseChannels = structured ? countChannels(input.dense, protectedTensors) : undefined;
  // channels start at 0; weights start at whatever the model already holds as zeros
  const initial = structured ? 0 : countSparsity(input.dense, weights).overall;
  if (!(config.sparsity > initial)) {
    throw new UserError(`--sparsity ${config.sparsity}: the model is already ${pct(initial)} sparse, so a gradual schedule has nowhere to go; raise --sparsity above ${initial.toFixed(3)}`);
  }
  if (structured && denseChannels!.removable === 0) {
    throw new UserError(`${req.model}: no channel group can be pruned (see --method structured notes); use --method unstructured`);
  }
  const targets = cubicSchedule(initial, config.sparsity, config.scheduleSteps);
  // unstructured sensitivity: curves measured once on the dense model, each step's target allocated from them
  const plan = config.scope === 'sensitivity' ? await unstructuredSensitivityPlan(input.dense, { calib: calib!, weights, config }) : undefined;
  for (const n of plan?.notes ?? []) progress.note(n);
  progress.note(`schedule: gradual, ${targets.length} steps to ${pct(config.sparsity)} (${targets.map(pct).join(', ')})`);

  const stepsRoot = path.join(req.out, 'steps');
  fs.mkdirSync(stepsRoot, { recursive: true });
  const ctx: StepContext = { data, shifts, denseWeights: weights, config, progress, provider };
  const dense = await measureStep('dense', 'input model, unchanged (the rollback artifact)', req.model, ctx);
  const withDense = { ...ctx, dense: dense.preds };
  const denseCalib = calib?.labels ? (await calibScore(input.dense, calib, config.latency.threads)).accuracy : null;
  const cliffMetric: ScheduleLedger['cliff_metric'] = denseCalib !== null ? 'calib' : 'eval';
  const denseQuality = denseCalib ?? dense.step.accuracy;
  const cliffThreshold = budgets.find((b) => b.name === 'accuracy-drop')?.limit ?? DEFAULT_CLIFF;
  const resource = budgets.filter((b) => RESOURCE_BUDGETS.has(b.name));
  const needsLatency = resource.some((b) => LATENCY_BUDGETS.has(b.name));

  const measured: MeasuredStep[] = [dense];
  const rows: Row[] = [];
  const notes = new Set<string>();
  const drops: number[] = [];
  let stoppedEarly: ScheduleLedger['stopped_early'] = null;
  let current = input.dense;

  for (let t = 1; t <= targets.length; t++) {
    const target = targets[t - 1];
    let stepSparsity = target;
    let what = `${config.method} to ${pct(target)}`;
    if (structured) {
      const now = countChannels(current, protectedTensors);
      const channels = target * channelShare;
      stepSparsity = Math.min(0.999, fractionOfRemaining(now.remaining, denseChannels!.remaining, channels) * (now.remaining / Math.max(1, now.removable)));
      what = `structured to ${pct(channels)} of the dense channels (${pct(stepSparsity)} of the ${now.removable} still removable)${channelShare < 1 ? `, then magnitude to ${pct(target)} of the dense weights` : ''}`;
    }
    progress.note(`pruning ${path.basename(req.model)} (schedule step ${t}/${targets.length}): ${what}`);
    const stepConfig: Config = { ...config, method: structured ? 'structured' : config.method, sparsity: stepSparsity };
    const pruned = plan
      ? { model: pruneCounts(current, weights, plan.counts(target)), description: `unstructured magnitude pruning (sensitivity) of ${weights.length} weight tensors to ${pct(target)}: per-layer ratios from the dense model's calibration-loss curves`, notes: [] as string[], structured: undefined }
      : await pruneModel(current, stepConfig, { modelPath: req.model, calib });
    if (config.method === 'hybrid') Object.assign(pruned, topUpMagnitude(pruned.model, pruned.description, weights, target, config));
    for (const n of pruned.notes) {
      if (!notes.has(n)) progress.note(n);
      notes.add(n);
    }
    setMetadata(pruned.model, {
      'prune-guard.version': VERSION,
      'prune-guard.method': config.method,
      'prune-guard.scope': config.scope,
      'prune-guard.target_sparsity': String(target),
      'prune-guard.schedule_step': `${t}/${targets.length}`,
      'prune-guard.source': path.basename(req.model),
      'prune-guard.recovery': config.recovery,
    });
    const dir = path.join(stepsRoot, `step-${String(t).padStart(2, '0')}`);
    fs.mkdirSync(dir, { recursive: true });
    const pruneArtifact = stepFile(dir, 1, 'prune');
    saveModel(pruned.model, pruneArtifact);
    // structured steps cut an already-smaller model: its channels are refit toward the previous step's outputs (the reference the pruner hands on), since the dense model's rows no longer line up
    const recovery = await runRecovery({ dense: input.dense, pruned: pruned.model, prunedArtifact: pruneArtifact, denseWeights: weights, calib, config, stepsDir: dir, progress, files: { data: req.data, calib: req.calib }, structured: pruned.structured });

    const at = `@${t}`;
    const prefix = `schedule step ${t}/${targets.length}, target ${pct(target)}: `;
    const stepMeasured = [await measureStep(`prune${at}`, prefix + pruned.description, pruneArtifact, withDense)];
    for (const r of recovery.steps) {
      const m = await measureStep(`${r.name}${at}`, r.description, r.artifact, withDense);
      m.step.recovery = r.info;
      if (r.temperature) m.step.temperature = r.temperature;
      stepMeasured.push(m);
    }
    const final = stepMeasured[stepMeasured.length - 1];
    if (recovery.temperature) final.step.temperature = recovery.temperature;
    measured.push(...stepMeasured);

    // the next step starts from what this step saved, read back from disk; a baked temperature is only
    // for the candidate that might ship, the chain continues from the model before it
    const chain = config.bakeTemperature ? (recovery.steps.filter((r) => r.name !== 'calibrate:temperature').at(-1)?.artifact ?? pruneArtifact) : final.step.artifact;
    const next = loadModel(chain).proto;
    {
      // tensors whose shape a channel cut changed are skipped; every other zero must stay zero
      const regrown = regrownWeights(current, next, weights.map((w) => w.initializer));
      if (regrown.length > 0) throw new Error(`internal error: schedule step ${t} made pruned weights nonzero again in ${regrown.slice(0, 3).join(', ')}`);
    }
    current = next;
    const row: Row = {
      index: t,
      target,
      final,
      calibAccuracy: calib?.labels ? (await calibScore(current, calib, config.latency.threads)).accuracy : null,
    };
    if (structured) row.channelsRemoved = 1 - countChannels(current, protectedTensors).remaining / denseChannels!.remaining;
    rows.push(row);

    // decide whether to go on; the ledger's verdicts are judged again after the interleaved latency pass
    let pair: { reference: number[]; candidate: number[] } | undefined;
    if (needsLatency) {
      pair = await timePair(req.model, final.step.artifact, data, config, provider, progress);
      dense.step.latency = latencyStat(config.batchSizes[0], pair.reference, config.confidence);
      final.step.latency = latencyStat(config.batchSizes[0], pair.candidate, config.confidence);
    }
    const judged = judge(budgets, dense, final, input, pair);
    const met = resource.length > 0 && resource.every((b) => judged.budgets.find((r) => r.name === b.name)?.verdict === 'pass');
    const quality = row.calibAccuracy ?? final.step.accuracy;
    drops.push(denseQuality !== null && quality !== null ? denseQuality - quality : 0);
    const more = t < targets.length;
    if (met && more) {
      stoppedEarly = { after_step: t, reason: 'budgets-met', detail: `every latency/size budget (${resource.map((b) => b.name).join(', ')}) is met at ${pct(final.step.sparsity)}; pruning further would only cost quality` };
    } else if (more && fellOffCliff(drops, cliffThreshold, config.schedulePatience)) {
      stoppedEarly = {
        after_step: t,
        reason: 'cliff',
        detail: `${cliffMetric === 'calib' ? 'calibration' : 'evaluation'} top-1 fell more than ${(cliffThreshold * 100).toFixed(2)} pt below dense for ${config.schedulePatience} step${config.schedulePatience > 1 ? 's' : ''} in a row (now ${(drops[drops.length - 1] * 100).toFixed(2)} pt below)`,
      };
    }
    if (stoppedEarly) {
      progress.note(`schedule: stopped after step ${t}: ${stoppedEarly.detail}`);
      break;
    }
  }

  const samples = await timeSteps(measured, data, config, provider, progress);
  for (const row of rows) {
    const i = measured.indexOf(row.final);
    row.judged = judge(budgets, dense, row.final, input, { reference: samples[0][0], candidate: samples[i][0] });
  }
  const choice = chooseStep(rows.map((r) => ({ index: r.index, sparsity: r.final.step.sparsity, accuracy: r.final.step.accuracy, verdicts: r.judged!.budgets.map((b) => b.verdict) })));
  const chosen = rows.find((r) => r.index === choice.index)!;
  progress.note(`schedule: shipping step ${chosen.index} (${chosen.final.step.name}, ${pct(chosen.final.step.sparsity)}): ${choice.reason}`);
  writeFileAtomic(outPath, fs.readFileSync(chosen.final.step.artifact));

  const steps = measured.map((m) => m.step);
  if (chosen !== rows[rows.length - 1]) {
    // the last step is the one that ships, for every reader of the ledger: the copy, byte for byte
    steps.push({ ...chosen.final.step, name: 'ship', artifact: outPath, description: `${chosen.final.step.name} (schedule step ${chosen.index}), copied byte for byte: ${choice.reason}` });
  }
  const judged = chosen.judged!;
  const schedule: ScheduleLedger = {
    kind: 'gradual',
    planned_steps: targets.length,
    initial,
    targets,
    patience: config.schedulePatience,
    cliff_threshold: cliffThreshold,
    cliff_metric: cliffMetric,
    dense_quality: denseQuality,
    steps: rows.map((r): ScheduleStep => ({
      index: r.index,
      target: r.target,
      sparsity: r.final.step.sparsity,
      ...(r.channelsRemoved !== undefined ? { channels_removed: r.channelsRemoved } : {}),
      step: r.final.step.name,
      artifact: r.final.step.artifact,
      calib_accuracy: r.calibAccuracy,
      accuracy: r.final.step.accuracy,
      size_bytes: r.final.step.size_bytes,
      p50_ms: r.final.step.latency?.p50_ms ?? null,
      budgets: r.judged!.budgets.map((b) => ({ name: b.name, actual: b.actual, verdict: b.verdict })),
      verdict: r.judged!.verdict,
    })),
    stopped_early: stoppedEarly,
    chosen: chosen.index,
    chosen_reason: choice.reason,
    rollback: req.model,
  };
  const modelLedger: ModelLedger = {
    model: req.model,
    pruned: outPath,
    method: config.method,
    target_sparsity: config.sparsity,
    steps,
    budgets: judged.budgets,
    verdict: overallVerdict(judged.budgets.map((b) => b.verdict)),
    class_changes: judged.classChanges,
    eval: { data: req.data, samples: data.count, classes: dense.preds.classes },
    ...(notes.size > 0 || plan ? { notes: [...(plan?.notes ?? []), ...notes] } : {}),
    ...(plan ? { sensitivity: plan.info(config.sparsity) } : {}),
    shifts: shiftResults(dense, chosen.final, shifts, new Set(config.corruptions), config.confidence),
    prediction_shift: predictionShifts(dense, chosen.final, shifts),
    // runPipeline resolved `auto` already; resolving again only narrows the type
    scope: resolveScope(config, calib ? { labelled: calib.labels !== null } : undefined).scope,
    schedule,
  };
  return writeLedger(req, input.provider, modelLedger);
}

function judge(budgets: RunRequest['budgets'], dense: MeasuredStep, step: MeasuredStep, input: GradualInput, latency: { reference: number[]; candidate: number[] } | undefined): Judged {
  const changes = classChanges(dense.step, step.step, input.data.labels!, dense.preds.classes);
  return judgeWithIntervals(budgets, dense, step, input.data, input.shifts, latency, input.req.config, changes);
}

/**
 * Hybrid's second half: zero the smallest surviving weights until `target` of the DENSE model's prunable
 * weights are gone (removed channels count). Zeros of earlier steps are the smallest |w|, so they stay.
 */
function topUpMagnitude(model: ModelProto, description: string, dense: readonly PrunableWeight[], target: number, config: Config): { model: ModelProto; description: string } {
  const rest = prunableWeights(model, { exclude: config.exclude, keepFirstLayer: config.keepFirstLayer, keepLastLayer: config.keepLastLayer });
  const size = (ws: readonly PrunableWeight[]) => ws.reduce((n, w) => n + w.dims.reduce((a, b) => a * b, 1), 0);
  const restTotal = size(rest);
  const denseTotal = size(dense);
  const extra = Math.max(0, target * denseTotal - (denseTotal - restTotal));
  const frac = restTotal > 0 ? Math.min(1, extra / restTotal) : 0;
  return {
    model: magnitudePrune(model, rest, frac, config.scope === 'layer' ? 'layer' : 'global').model,
    description: `${description}; then unstructured magnitude (${config.scope}) to ${pct(target)} of the dense prunable weights (${(frac * 100).toFixed(1)}% of the remaining ones zero)`,
  };
}

/** Weights the config keeps dense (exclude globs, keep-first/last-layer): structured groups touching them are not cut. */
function protectedFor(dense: ModelProto, kept: readonly PrunableWeight[]): Set<string> {
  const all = prunableWeights(dense, { exclude: [], keepFirstLayer: false, keepLastLayer: false });
  const keep = new Set(kept.map((w) => w.initializer));
  return new Set(all.map((w) => w.initializer).filter((n) => !keep.has(n)));
}
