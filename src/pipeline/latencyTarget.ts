import * as fs from 'node:fs';
import * as path from 'node:path';
import { median } from 'simple-statistics';
import type { Config } from '../config/schema.js';
import { sliceBatch, type Dataset } from '../data/dataset.js';
import type { Progress } from '../io/progress.js';
import { measureInterleaved } from '../measure/latency.js';
import { modelCost } from '../onnx/flops.js';
import { saveModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { pruneModel, type PruneContext, type PruneOutcome } from '../prune/pruneModel.js';
import { nextCorrection, shippedAttempt, type Attempt } from '../prune/structured/latencyTarget.js';
import type { TargetRecord } from '../prune/structured/record.js';
import { prunableWeights } from '../prune/prunable.js';
import { groupLossCurves } from '../prune/sensitivity/sensitivityPrune.js';
import { stepName, type StepRecord } from './steps.js';
import { chooseCandidate, fitSamples, reconstructedScore, SPREADS, type CandidateChoice } from './targetCandidates.js';
import { defaultHead } from '../onnx/runtime/classifier.js';
import { recoveryAllowance } from '../recover/work.js';
import type { Spread } from '../prune/structured/latencyModel.js';
import { spreadLabel } from '../prune/structured/record.js';

export interface TargetedPrune {
  /** the attempt that ships, as the `prune` step */
  pruned: PruneOutcome;
  /** the other attempts, saved as their own steps (measured like any step) */
  earlier: StepRecord[];
  record: TargetRecord;
}

/**
 * Prune for a latency target: time dense at the target batch, allocate under the predicted budget the
 * target amounts to, prune, time the pruned model interleaved with dense, and correct the budget by the
 * shortfall until the measured speedup meets the target or no further step helps (nextCorrection). The
 * attempt that met the target ships, else the fastest one, and the record says why it stopped.
 */
export async function pruneForLatency(dense: ModelProto, modelPath: string, config: Config, ctx: PruneContext & { data: Dataset; stepsDir: string; progress: Progress; provider: 'cpu' | 'cuda' }): Promise<TargetedPrune> {
  const batch = config.batchSizes[0];
  const source = sliceBatch(ctx.data, 0, Math.min(ctx.data.count, batch));
  const time = async (files: string[], label: string): Promise<number[]> => {
    ctx.progress.stage({ kind: 'latency', detail: label, total: config.latency.warmup + config.latency.runs });
    const samples = await measureInterleaved(files, source, { ...config.latency, batchSizes: [batch], confidence: config.confidence, provider: ctx.provider }, (d) => ctx.progress.update(d));
    ctx.progress.stop();
    return samples.map((s) => median(s[0]));
  };
  const [denseMs] = await time([modelPath], `latency target: dense at batch ${batch}`);
  const needed = config.targetSpeedup ?? denseMs / config.targetLatencyMs!;
  // with calibration data, channels are weighed by each group's measured loss curve instead of magnitude
  const curves = ctx.calib ? await lossCurves(dense, config, ctx) : undefined;
  if (curves) ctx.progress.note(curves.note);
  const dir = path.join(ctx.stepsDir, 'target');
  fs.mkdirSync(dir, { recursive: true });
  // only the attempt that would ship keeps its models in memory (a pruned copy and an untied dense reference each)
  const attempts: (Attempt & { outcome?: PruneOutcome; predicted: number; file: string; p50: number; macs: number })[] = [];
  let budgetMs = denseMs / needed;
  const pruneAt = (spread: Spread): Promise<PruneOutcome> =>
    pruneModel(dense, { ...config, scope: 'global' }, { ...ctx, latencyTarget: { batch, denseMs, budgetMs, spread }, ...(curves ? { lossCurves: curves.curves } : {}) });
  // with labels, the spread of the cut is chosen once, on the first budget, by the calibration score
  // after a quick reconstruction; corrections keep it
  let spread: Spread = { kind: 'capped', evenness: 0 };
  let search: Omit<CandidateChoice, 'outcome'> | undefined;
  let first: PruneOutcome | undefined;
  if (curves && ctx.calib?.labels) {
    // the search may spend what recovery may on the samples it refits on, shared evenly by its candidates
    const searchWork = recoveryAllowance({ macsPerSample: modelCost(dense).macs, calibSamples: fitSamples(ctx.calib.count) }, config.recoveryWork);
    const score = reconstructedScore(dense, ctx.calib, ctx.head ?? defaultHead(dense, config.output), searchWork / SPREADS.length);
    const { outcome: chosen, ...scores } = await chooseCandidate(SPREADS, pruneAt, score, (o) => modelCost(o.model).macs);
    search = scores;
    first = chosen;
    spread = SPREADS[search.chosen];
    ctx.progress.note(`latency target: ${candidatesText(search)}`);
  }
  for (;;) {
    const outcome = first ?? (await pruneAt(spread));
    first = undefined;
    const file = path.join(dir, `attempt-${attempts.length + 1}.onnx`);
    saveModel(outcome.model, file);
    const [d, p] = await time([modelPath, file], `latency target: attempt ${attempts.length + 1} against dense`);
    const plan = outcome.allocation?.latency;
    attempts.push({ budgetMs, reached: plan?.reached ?? true, kept: keptSignature(outcome), speedup: d / p, outcome, predicted: plan?.predicted_ms ?? NaN, file, p50: p, macs: modelCost(outcome.model).macs });
    const leading = shippedAttempt(attempts, needed);
    attempts.forEach((a, i) => {
      if (i !== leading) delete a.outcome;
    });
    const next = nextCorrection(attempts, needed);
    ctx.progress.note(`latency target: attempt ${attempts.length} (budget ${budgetMs.toFixed(3)} ms, predicted ${plan?.predicted_ms.toFixed(3)} ms) measured ${(d / p).toFixed(2)}x of ${needed.toFixed(2)}x`);
    if (next.kind === 'correct') {
      budgetMs = next.budgetMs;
      continue;
    }
    const shipped = shippedAttempt(attempts, needed);
    const met = attempts[shipped].speedup >= needed;
    const record: TargetRecord = {
      kind: config.targetSpeedup !== undefined ? 'speedup' : 'latency-ms',
      value: config.targetSpeedup ?? config.targetLatencyMs!,
      batch,
      dense_ms: denseMs,
      speedup_needed: needed,
      attempts: attempts.map((a, i) => ({
        step: i === shipped ? 'prune' : stepName({ kind: 'target', attempt: i + 1 }),
        budget_ms: a.budgetMs,
        predicted_ms: a.predicted,
        reached: a.reached,
        p50_ms: a.p50,
        speedup: a.speedup,
        macs: a.macs,
      })),
      outcome: met ? 'met' : next.kind === 'stop' ? next.reason : 'limit',
      detail: met ? `measured ${attempts[shipped].speedup.toFixed(2)}x of ${needed.toFixed(2)}x at batch ${batch}` : next.kind === 'stop' ? next.detail : 'not met',
      shipped,
      ...(search ? { candidates: search.candidates, chosen: search.chosen } : {}),
    };
    const shippedOutcome = attempts[shipped].outcome!;
    const allocation = shippedOutcome.allocation ? { ...shippedOutcome.allocation, target: record } : { rounding: 'none' as const, target: record };
    return {
      pruned: { ...shippedOutcome, allocation, description: `${shippedOutcome.description}; allocated for ${needed.toFixed(2)}x at batch ${batch} (attempt ${shipped + 1} of ${attempts.length})` },
      earlier: attempts.flatMap((a, i) => (i === shipped ? [] : [{ step: { kind: 'target' as const, attempt: i + 1 }, description: `latency target attempt ${i + 1}: budget ${a.budgetMs.toFixed(3)} ms, measured ${a.speedup.toFixed(2)}x`, artifact: a.file }])),
      record,
    };
  }
}

async function lossCurves(dense: ModelProto, config: Config, ctx: PruneContext & { progress: Progress }): Promise<Awaited<ReturnType<typeof groupLossCurves>>> {
  const weights = prunableWeights(dense, { exclude: config.exclude, keepFirstLayer: config.keepFirstLayer, keepLastLayer: config.keepLastLayer });
  const all = prunableWeights(dense, { exclude: [], keepFirstLayer: false, keepLastLayer: false });
  const kept = new Set(weights.map((w) => w.initializer));
  let started = false;
  const r = await groupLossCurves(dense, ctx.calib!, {
    protectedTensors: new Set(all.map((w) => w.initializer).filter((n) => !kept.has(n))),
    criterion: config.criterion,
    onLayer: (done, total) => {
      if (!started) ctx.progress.stage({ kind: 'sensitivity', detail: `latency target: ${total} groups`, total });
      started = true;
      ctx.progress.update(done);
    },
  });
  if (started) ctx.progress.stop();
  return r;
}

function keptSignature(o: PruneOutcome): string {
  return JSON.stringify(o.allocation?.latency?.kept ?? []);
}

function candidatesText(c: Omit<CandidateChoice, 'outcome'>): string {
  const rows = c.candidates.map((k, i) => `${i === c.chosen ? '*' : ''}${spreadLabel(k)}: ${(k.calib_accuracy * 100).toFixed(2)}% NLL ${k.calib_nll.toFixed(4)}`);
  return `spread of the cut chosen by held-out calibration score after reconstruction (evenness or uniform: score) ${rows.join(', ')}`;
}
