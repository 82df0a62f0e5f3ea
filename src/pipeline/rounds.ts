import * as path from 'node:path';
import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import type { Progress } from '../io/progress.js';
import { loadModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { magnitudePrune } from '../prune/magnitude.js';
import { prunableWeights, type PrunableWeight } from '../prune/prunable.js';
import type { PruneOutcome } from '../prune/pruneModel.js';
import { cubicSchedule } from '../prune/schedule.js';
import { pruneCounts, unstructuredSensitivityPlan, type UnstructuredSensitivityPlan } from '../prune/sensitivity/sensitivityPrune.js';
import { countSparsity } from '../prune/sparsity.js';
import type { Head } from '../onnx/head.js';
import { better, calibScore, type CalibScore } from '../recover/calibScore.js';
import { stepFile, type RecoveryStep } from '../recover/runRecovery.js';
import { safetyStop, type CutShort, type SafetyStop } from '../recover/work.js';
import { QUALITY_THREADS } from '../onnx/runtime/quality.js';
import type { StepRecord } from './steps.js';
import { pruneAndRecover, type UnitOutcome } from './unit.js';

/**
 * `recovery-rounds`: iterative pruning inside one oneshot run (gradual magnitude pruning as the recovery
 * itself, Zhu & Gupta 2017; iterative magnitude pruning). Rounds 1..R-1 are prune-and-recover units at
 * the cubic schedule's intermediate sparsities, each from the previous round's recovered weights; round R
 * is the run's ordinary prune + recovery at the target. Only calibration numbers are computed between
 * rounds: the evaluation set measures the rounds' saved models afterwards, like every other step.
 */

export interface RoundsContext {
  modelPath: string;
  calib: Dataset;
  /** OUT/steps: round r of a chain writes to <chain>/round-0r/, the final round to <chain>/ */
  stepsDir: string;
  progress: Progress;
  files: { data: string; calib?: string };
  /** the output judged (findHead) */
  head?: Head;
  /** the pipeline's metadata for the shipped pruned model, with the scope the chain allocated by */
  metadata: (scope: string) => Record<string, string>;
}

export interface Rounds {
  /** rounds 1..R-1, one step each (its recovered model), measured between dense and the final prune */
  rounds: StepRecord[];
  /** round R: the pipeline's prune and recovery steps */
  final: UnitOutcome;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** Prune one round's target from `model`: every earlier zero has |w| = 0, so it stays pruned. */
export function pruneRound(model: ModelProto, weights: readonly PrunableWeight[], target: number, config: Pick<Config, 'scope'>, plan?: UnstructuredSensitivityPlan): ModelProto {
  if (plan) return pruneCounts(model, weights, plan.counts(target));
  return magnitudePrune(model, weights, target, config.scope === 'layer' ? 'layer' : 'global').model;
}

/**
 * The calibration scores recovery recorded: before its first kept stage (the pruned model) and after its
 * last (the recovered model); undefined when no scored stage was kept. A baked temperature records no
 * accuracy and is left out: it rescales logits without changing the argmax the rounds compare.
 */
function recordedScores(steps: readonly RecoveryStep[]): { before: CalibScore; after: CalibScore } | undefined {
  const scored = steps.filter((s) => s.info.calib_accuracy_after !== undefined && s.info.calib_nll_after !== undefined);
  if (scored.length === 0) return undefined;
  const first = scored[0].info;
  const last = scored[scored.length - 1].info;
  return { before: { accuracy: first.calib_accuracy_before!, nll: first.calib_nll_before! }, after: { accuracy: last.calib_accuracy_after!, nll: last.calib_nll_after! } };
}

/** One chain of rounds with one allocation, the final prune and recovery included. */
async function runChain(dense: ModelProto, weights: readonly PrunableWeight[], config: Config, rounds: number, dir: string, ctx: RoundsContext, chains: number, stop: SafetyStop, plan?: UnstructuredSensitivityPlan): Promise<Rounds & { score: CalibScore | undefined; seconds: number }> {
  const t0 = performance.now();
  const { calib, progress } = ctx;
  const targets = cubicSchedule(countSparsity(dense, weights).overall, config.sparsity, rounds);
  // each round of each chain gets an equal share of the recovery work allowance, the final one included;
  // the safety stop is one for the whole run
  const workShare = 1 / (rounds * chains);
  const recovery = { dense, calib, files: ctx.files, progress, workShare, stop, head: ctx.head };
  let cutShort: CutShort | undefined;
  const steps: StepRecord[] = [];
  let current = dense;
  for (let r = 1; r < rounds; r++) {
    const started = performance.now();
    const target = targets[r - 1];
    progress.stage({ kind: 'recover', work: 'round', round: r, rounds, detail: `${config.method} to ${pct(target)}` });
    const roundDir = path.join(dir, `round-${String(r).padStart(2, '0')}`);
    const from = current;
    const unit = await pruneAndRecover({
      prune: async () => ({ model: pruneRound(from, weights, target, config, plan), description: '', denseWeights: [...weights], notes: [] }),
      pruneArtifact: stepFile(roundDir, 1, 'prune'),
      // an intermediate round ships nothing: no temperature is fitted or baked
      recovery: { ...recovery, config: { ...config, bakeTemperature: false }, stepsDir: roundDir, fitTemperature: false },
    });
    cutShort ??= unit.cutShort;
    // recovery scored both ends already; a pass of its own only when it kept no stage
    const recorded = recordedScores(unit.recovered);
    const before = recorded?.before ?? (await calibScore(unit.pruned.model, calib, QUALITY_THREADS, ctx.head));
    const after = recorded?.after ?? before;
    current = loadModel(unit.chain).proto;
    const seconds = (performance.now() - started) / 1000;
    const kept = unit.recovered.map((s) => s.stage).join(' + ') || 'nothing kept';
    steps.push({
      step: { kind: 'recover', stage: 'round', round: r },
      description: `recovery round ${r} of ${rounds}: ${config.scope === 'sensitivity' ? 'sensitivity-allocated' : config.scope} magnitude pruning to ${pct(target)} of the previous round's recovered weights, then ${config.recovery} recovery (${kept}; calib acc ${(before.accuracy * 100).toFixed(2)}% -> ${(after.accuracy * 100).toFixed(2)}%; ${seconds.toFixed(1)} s)`,
      artifact: unit.chain,
      recovery: { seconds, calib_accuracy_before: before.accuracy, calib_accuracy_after: after.accuracy, calib_nll_before: before.nll, calib_nll_after: after.nll },
    });
  }
  progress.stage({ kind: 'recover', work: 'round', round: rounds, rounds, detail: `${config.method} to ${pct(config.sparsity)}` });
  const how = plan ? 'sensitivity-allocated (curves measured once on the dense model)' : config.scope;
  const from = current;
  const final = await pruneAndRecover({
    prune: async (): Promise<PruneOutcome> => ({
      model: pruneRound(from, weights, config.sparsity, config, plan),
      description: `unstructured magnitude pruning (${how}) of ${weights.length} weight tensors to ${pct(config.sparsity)}, round ${rounds} of ${rounds} (${targets.map(pct).join(', ')}): from round ${rounds - 1}'s recovered weights`,
      denseWeights: [...weights],
      notes: [...(plan?.notes ?? []), `recovery-rounds: ${rounds} rounds of prune + ${config.recovery} recovery (${targets.map(pct).join(', ')}), each with ${config.recoveryWork > 0 ? `1/${rounds * chains}` : 'no limit'} of the recovery work allowance`],
      ...(plan ? { sensitivity: plan.info(config.sparsity) } : {}),
    }),
    metadata: () => ctx.metadata(plan ? 'sensitivity' : config.scope),
    pruneArtifact: stepFile(dir, 1, 'prune'),
    // the final round gets the same share of the recovery work allowance as every other round
    recovery: { ...recovery, config, stepsDir: dir },
  });
  cutShort ??= final.cutShort;
  if (cutShort) final.cutShort = cutShort;
  const score = calib.labels ? (recordedScores(final.recovered)?.after ?? (await calibScore(final.pruned.model, calib, QUALITY_THREADS, ctx.head))) : undefined;
  return { rounds: steps, final, score, seconds: (performance.now() - t0) / 1000 };
}

/**
 * The pipeline's prune and recovery with rounds: rounds 1..R-1 pruned and recovered, then the target
 * pruned from the last round's recovered weights and recovered. With `--scope sensitivity` the curves are
 * measured once on the dense model and every round's per-layer counts come from them. With
 * `rounds-compare-sensitivity` (global scope), the rounds run with both allocations and the chain whose
 * shipped model has the lower calibration NLL is kept; the other is named in a note.
 */
export async function pruneWithRounds(dense: ModelProto, config: Config, rounds: number, ctx: RoundsContext, compare = false): Promise<Rounds> {
  const weights = prunableWeights(dense, { exclude: config.exclude, keepFirstLayer: config.keepFirstLayer, keepLastLayer: config.keepLastLayer });
  if (weights.length === 0) throw new UserError(`${ctx.modelPath}: no prunable Conv, ConvTranspose, Gemm or MatMul weights (after exclude globs); nothing to prune`);
  const sensitivity = async () => unstructuredSensitivityPlan(dense, { calib: ctx.calib, weights, config, head: ctx.head });
  const stop = safetyStop(config.recoveryTimeBudget);
  if (!(compare && config.scope === 'global' && ctx.calib.labels)) {
    return runChain(dense, weights, config, rounds, ctx.stepsDir, ctx, 1, stop, config.scope === 'sensitivity' ? await sensitivity() : undefined);
  }
  // two chains share the recovery work allowance
  const global = await runChain(dense, weights, config, rounds, path.join(ctx.stepsDir, 'global'), ctx, 2, stop);
  const bySensitivity = await runChain(dense, weights, config, rounds, path.join(ctx.stepsDir, 'sensitivity'), ctx, 2, stop, await sensitivity());
  const keepSensitivity = better(bySensitivity.score!, global.score!);
  const [won, lost] = keepSensitivity ? [bySensitivity, global] : [global, bySensitivity];
  const say = (c: typeof won, name: string) => `${name} allocation calib acc ${(c.score!.accuracy * 100).toFixed(2)}%, NLL ${c.score!.nll.toFixed(4)} (${c.seconds.toFixed(1)} s)`;
  won.final.pruned.notes.push(
    `recovery rounds with both allocations: kept the ${keepSensitivity ? 'sensitivity' : 'global'} allocation's rounds (${say(won, keepSensitivity ? 'sensitivity' : 'global')}; ${say(lost, keepSensitivity ? 'global' : 'sensitivity')}, its files under OUT/steps/${keepSensitivity ? 'global' : 'sensitivity'})`,
  );
  const cutShort = global.final.cutShort ?? bySensitivity.final.cutShort;
  if (cutShort) won.final.cutShort = cutShort;
  return { rounds: won.rounds, final: won.final };
}
