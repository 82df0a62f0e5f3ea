import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Config } from '../config/schema.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import type { Progress } from '../io/progress.js';
import { buildReduction, type ChannelReduction } from '../ledger/reduction.js';
import type { BudgetName, ModelLedger, ScheduleLedger, ScheduleStep } from '../ledger/types.js';
import { latencyStat } from '../measure/latency.js';
import { GraphIndex } from '../onnx/graph.js';
import { loadModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { tensorToFloat32 } from '../onnx/tensor.js';
import { topUpMagnitude } from '../prune/hybrid.js';
import { prunableWeights, type PrunableWeight } from '../prune/prunable.js';
import { pruneModel, requestedReduction, type PruneOutcome } from '../prune/pruneModel.js';
import type { ChannelTally, Reduction } from '../prune/reduction.js';
import { chooseStep, cubicSchedule, fellOffCliff, fractionOfRemaining } from '../prune/schedule.js';
import { pruneCounts, unstructuredSensitivityPlan } from '../prune/sensitivity/sensitivityPrune.js';
import { countSparsity } from '../prune/sparsity.js';
import { countChannels } from '../prune/structured/channels.js';
import { calibScore } from '../recover/calibScore.js';
import { stepFile } from '../recover/runRecovery.js';
import { VERSION } from '../version.js';
import { buildModelLedger } from './ledger.js';
import { measureRecord, measureStep, type MeasuredStep, type StepContext } from './measureStep.js';
import type { RunRequest, StrategyInput } from './request.js';
import { stepName } from './steps.js';
import { timePair, timeSteps } from './timeSteps.js';
import { pruneAndRecover } from './unit.js';
import { checkWidths, widthProbes } from './widthCheck.js';
import { cacheDir } from '../io/measureCache.js';
import { judgeWithIntervals, type Judged, type PairedLatency } from './verdicts.js';
import { speedTests } from './speedDecisions.js';
import type { SequentialDecisions } from '../measure/stats/uncertainty.js';
import { QUALITY_THREADS } from '../onnx/runtime/quality.js';

/** Budgets a schedule stops on once met: pruning further would only cost quality. */
const RESOURCE_BUDGETS: ReadonlySet<BudgetName> = new Set(['min-speedup', 'p95-latency-ms', 'max-size-bytes']);
const LATENCY_BUDGETS: ReadonlySet<BudgetName> = new Set(['min-speedup', 'p95-latency-ms']);
/** cliff threshold when no accuracy-drop budget is configured */
const DEFAULT_CLIFF = 0.02;

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
  /** channels removed so far (of those the target applies to) and the groups left whole */
  channels?: ChannelReduction;
  /** this step's requested and achieved reduction (its own target) */
  reduction?: Reduction;
  judged?: Judged;
  /** the speed budgets' sequential decisions on dense against this step, taken when the step was made */
  decisions?: SequentialDecisions;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * `--schedule gradual`: prune-and-recover units at N rising sparsities (cubic schedule), each pruning the
 * previous unit's recovered model read back from disk and measured after it; stop early once every
 * latency/size budget is met or when quality falls off a cliff; ship the best step that meets every
 * budget. The dense input is never modified and stays the rollback artifact.
 */
export async function runGradual(input: StrategyInput, progress: Progress): Promise<ModelLedger> {
  const { req, data, shifts, calib, outPath, provider } = input;
  const { config, budgets } = req;
  const denseModel = input.dense.proto;
  // structured and hybrid cut channels: hybrid's channel share is half the target, as in one shot
  const structured = config.method === 'structured' || config.method === 'hybrid';
  const channelShare = config.method === 'hybrid' ? 0.5 : 1;
  const weights = prunableWeights(denseModel, { exclude: config.exclude, keepFirstLayer: config.keepFirstLayer, keepLastLayer: config.keepLastLayer });
  if (weights.length === 0) {
    throw new UserError(`${req.model}: no prunable Conv, ConvTranspose, Gemm or MatMul weights (after exclude globs); nothing to prune`);
  }
  const protectedTensors = protectedFor(denseModel, weights);
  const denseChannels = structured ? countChannels(denseModel, protectedTensors) : undefined;
  // channels start at 0; weights start at whatever the model already holds as zeros
  const initial = structured ? 0 : countSparsity(denseModel, weights).overall;
  if (!(config.sparsity > initial)) {
    throw new UserError(`--sparsity ${config.sparsity}: the model is already ${pct(initial)} sparse, so a gradual schedule has nowhere to go; raise --sparsity above ${initial.toFixed(3)}`);
  }
  if (structured && denseChannels!.removable === 0) {
    throw new UserError(`${req.model}: no channel group can be pruned (see --method structured notes); use --method unstructured`);
  }
  const targets = cubicSchedule(initial, config.sparsity, config.scheduleSteps);
  // unstructured sensitivity: curves measured once on the dense model, each step's target allocated from them
  const plan = config.scope === 'sensitivity' ? await unstructuredSensitivityPlan(denseModel, { calib: calib!, weights, config, head: input.head }) : undefined;
  for (const n of plan?.notes ?? []) progress.note(n);
  progress.note(`schedule: gradual, ${targets.length} steps to ${pct(config.sparsity)} (${targets.map(pct).join(', ')})`);

  const stepsRoot = path.join(req.out, 'steps');
  fs.mkdirSync(stepsRoot, { recursive: true });
  // every structured step snaps its kept counts to the widths that run fast, checked on the whole model,
  // as a one-shot prune does: the step that ships must not run slower for its channel counts. Hybrid
  // steps keep exact channel counts: their weight target is met exactly by the magnitude top-up, which a
  // coarser channel cut can overshoot
  const hardware = config.method === 'structured' ? widthProbes(config, progress) : undefined;
  const ctx: StepContext = { data, shifts, denseWeights: weights, config, progress, provider, head: input.head };
  const dense = await measureStep({ kind: 'dense' }, 'input model, unchanged (the rollback artifact)', req.model, ctx);
  const withDense = { ...ctx, dense: dense.preds };
  const denseCalib = calib?.labels ? (await calibScore(denseModel, calib, QUALITY_THREADS, input.head)).accuracy : null;
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
  let current = denseModel;
  // the dense model's groups, as the first step found them: what every step's channel count is against
  let denseTally: ChannelTally | undefined;

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
    progress.stage({ kind: 'prune', model: path.basename(req.model), schedule: { step: t, steps: targets.length }, detail: what });
    const stepConfig: Config = { ...config, method: structured ? 'structured' : config.method, sparsity: stepSparsity };
    const from = current;
    const dir = path.join(stepsRoot, `step-${String(t).padStart(2, '0')}`);
    const pruneStep = async (): Promise<PruneOutcome> => {
      const pruneCtx = { modelPath: req.model, calib, head: input.head, ...(hardware ? { hardware } : {}) };
      const first = await pruneModel(from, stepConfig, pruneCtx);
      return hardware ? checkWidths(first, from, stepConfig, { ...pruneCtx, data, dir, cacheDir: cacheDir(), provider }) : first;
    };
    const prune = async (): Promise<PruneOutcome> => {
      const pruned: PruneOutcome = plan
        ? { model: pruneCounts(from, weights, plan.counts(target)), description: `unstructured magnitude pruning (sensitivity) of ${weights.length} weight tensors to ${pct(target)}: per-layer ratios from the dense model's calibration-loss curves`, denseWeights: weights, notes: [] }
        : await pruneStep();
      if (config.method === 'hybrid') {
        const topUp = topUpMagnitude(pruned.model, weights, target, config, config.scope === 'layer' ? 'layer' : 'global');
        pruned.model = topUp.model;
        pruned.description += `; then unstructured magnitude (${config.scope}) to ${pct(target)} of the dense prunable weights (${(topUp.fraction * 100).toFixed(1)}% of the remaining ones zero)`;
      }
      for (const n of pruned.notes) {
        if (!notes.has(n)) progress.note(n);
        notes.add(n);
      }
      if (t === 1) denseTally = pruned.channels;
      // recovery refits toward the dense model's weights (by name), whatever shapes this step started from
      return { ...pruned, denseWeights: weights, description: `schedule step ${t}/${targets.length}, target ${pct(target)}: ${pruned.description}` };
    };
    // structured steps cut an already-smaller model: its channels are refit toward the previous step's
    // outputs (the reference the pruner hands on), since the dense model's rows no longer line up
    const unit = await pruneAndRecover({
      prune,
      metadata: () => ({
        'prune-guard.version': VERSION,
        'prune-guard.method': config.method,
        'prune-guard.scope': config.scope,
        'prune-guard.target_sparsity': String(target),
        'prune-guard.schedule_step': `${t}/${targets.length}`,
        'prune-guard.source': path.basename(req.model),
        'prune-guard.recovery': config.recovery,
      }),
      pruneArtifact: stepFile(dir, 1, 'prune'),
      recovery: { dense: denseModel, calib, config, stepsDir: dir, progress, files: { data: req.data, calib: req.calib }, head: input.head },
      at: t,
    });

    const stepMeasured: MeasuredStep[] = [];
    for (const r of unit.steps) stepMeasured.push(await measureRecord(r, withDense));
    const final = stepMeasured[stepMeasured.length - 1];
    if (unit.temperature) final.step.temperature = unit.temperature;
    measured.push(...stepMeasured);

    // the next step starts from what this step saved, read back from disk; a baked temperature is only
    // for the candidate that might ship, the chain continues from the model before it
    const next = loadModel(unit.chain).proto;
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
      calibAccuracy: calib?.labels ? (await calibScore(current, calib, QUALITY_THREADS, input.head)).accuracy : null,
    };
    if (structured) row.channelsRemoved = 1 - countChannels(current, protectedTensors).remaining / denseChannels!.remaining;
    if (structured && denseTally) {
      const removed = denseChannels!.remaining - countChannels(current, protectedTensors).remaining;
      row.channels = { removed: denseTally.eligible > 0 ? removed / denseTally.eligible : 0, skipped: denseTally.skipped };
    }
    row.reduction = buildReduction(dense.step, stepMeasured[0].step, requestedReduction({ method: config.method, sparsity: target }), row.channels);
    stepMeasured[0].step.reduction = row.reduction;
    rows.push(row);

    // decide whether to go on; the ledger's verdicts are judged again after the interleaved latency pass
    let pair: PairedLatency | undefined;
    if (needsLatency) {
      pair = await timePair(req.model, final.step.artifact, data, config, provider, progress, speedTests(budgets, config, 'run'));
      row.decisions = pair.decisions;
      dense.step.latency = latencyStat(config.batchSizes[0], [...pair.reference], config.confidence);
      final.step.latency = latencyStat(config.batchSizes[0], [...pair.candidate], config.confidence);
    }
    const judged = judge(budgets, dense, final, input, pair, row.reduction);
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
    row.judged = judge(budgets, dense, row.final, input, { reference: samples[0][0], candidate: samples[i][0], decisions: row.decisions }, row.reduction);
  }
  const choice = chooseStep(rows.map((r) => ({ index: r.index, sparsity: r.final.step.sparsity, accuracy: r.final.step.accuracy, verdicts: r.judged!.budgets.map((b) => b.verdict) })));
  const chosen = rows.find((r) => r.index === choice.index)!;
  // steps are chosen on their own targets; the run is judged on the one the user asked for
  const chosenPrune = measured.find((m) => m.step.name === stepName({ kind: 'prune', at: chosen.index }))!.step;
  const runJudged = judge(budgets, dense, chosen.final, input, { reference: samples[0][0], candidate: samples[measured.indexOf(chosen.final)][0], decisions: chosen.decisions }, buildReduction(dense.step, chosenPrune, requestedReduction(config), chosen.channels));
  progress.note(`schedule: shipping step ${chosen.index} (${chosen.final.step.name}, ${pct(chosen.final.step.sparsity)}): ${choice.reason}`);
  writeFileAtomic(outPath, fs.readFileSync(chosen.final.step.artifact));

  // the last step is the one that ships, for every reader of the ledger: the copy, byte for byte
  const shipped: MeasuredStep =
    chosen === rows[rows.length - 1]
      ? chosen.final
      : { ...chosen.final, kind: { kind: 'ship' }, step: { ...chosen.final.step, name: stepName({ kind: 'ship' }), artifact: outPath, description: `${chosen.final.step.name} (schedule step ${chosen.index}), copied byte for byte: ${choice.reason}` } };
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
  return buildModelLedger({
    model: req.model,
    pruned: outPath,
    method: config.method,
    targetSparsity: config.sparsity,
    steps: shipped === chosen.final ? measured : [...measured, shipped],
    reference: dense,
    shipped: chosen.final,
    judged: runJudged,
    data: { path: req.data, set: data },
    head: input.head,
    plan: input.plan,
    shifts,
    config,
    notes: [...input.exportNotes, ...(plan?.notes ?? []), ...notes],
    scope: input.scope.scope,
    ...(plan ? { sensitivity: plan.info(config.sparsity) } : {}),
    schedule,
  });
}

function judge(budgets: RunRequest['budgets'], dense: MeasuredStep, step: MeasuredStep, input: StrategyInput, latency: PairedLatency | undefined, reduction: Reduction | undefined): Judged {
  return judgeWithIntervals(budgets, dense, step, input.data, input.shifts, latency, input.req.config, false, reduction);
}

/** Weights the config keeps dense (exclude globs, keep-first/last-layer): structured groups touching them are not cut. */
function protectedFor(dense: ModelProto, kept: readonly PrunableWeight[]): Set<string> {
  const all = prunableWeights(dense, { exclude: [], keepFirstLayer: false, keepLastLayer: false });
  const keep = new Set(kept.map((w) => w.initializer));
  return new Set(all.map((w) => w.initializer).filter((n) => !keep.has(n)));
}
