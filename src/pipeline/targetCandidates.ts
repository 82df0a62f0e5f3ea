import { takeSamples, type Dataset } from '../data/dataset.js';
import type { Head } from '../onnx/head.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { QUALITY_THREADS } from '../onnx/runtime/quality.js';
import type { PruneOutcome } from '../prune/pruneModel.js';
import type { Spread } from '../prune/structured/latencyModel.js';
import type { CandidateScore } from '../prune/structured/record.js';
import { better, calibScore, type CalibScore } from '../recover/calibScore.js';
import { DEFAULT_RECONSTRUCT, reconstruct } from '../recover/reconstruct.js';
import { refitWeights } from '../recover/runRecovery.js';
import { WorkMeter } from '../recover/work.js';

/**
 * How a latency target's cut is spread: the candidates tried, from where the loss curves alone put it
 * (evenness 0) through per-group caps to about the same fraction from every group (1), and the uniform
 * cut `--scope layer` would make. The curves price each group pruned alone and before recovery, so the
 * allocation they favour is not always the one recovery repairs best; which spread wins is measured,
 * not assumed.
 */
export const SPREADS: readonly Spread[] = [...[0, 1 / 3, 2 / 3, 1].map((evenness) => ({ kind: 'capped' as const, evenness })), { kind: 'uniform' }];

export interface CandidateChoice {
  /** index into `candidates` of the one chosen */
  chosen: number;
  outcome: PruneOutcome;
  candidates: CandidateScore[];
}

/**
 * Prune at each evenness, keep those whose prediction reaches the budget (all of them when none does),
 * and choose the best by `score` (lower NLL, then accuracy; ties keep the earlier, less even one). An
 * evenness that picks the same channels as one before it is not scored again. Only the chosen outcome
 * stays in memory.
 */
export async function chooseCandidate(
  grid: readonly Spread[],
  prune: (spread: Spread) => Promise<PruneOutcome>,
  score: (o: PruneOutcome) => Promise<CalibScore>,
  macs: (o: PruneOutcome) => number,
): Promise<CandidateChoice> {
  const seen = new Map<string, number>();
  const candidates: CandidateScore[] = [];
  let best: { i: number; outcome: PruneOutcome; score: CalibScore; reached: boolean } | undefined;
  for (const spread of grid) {
    const outcome = await prune(spread);
    const plan = outcome.allocation?.latency;
    const key = JSON.stringify(plan?.kept ?? []);
    const same = seen.get(key);
    const evenness = spread.kind === 'capped' ? spread.evenness : 1;
    if (same !== undefined) {
      candidates.push({ ...candidates[same], spread: spread.kind, evenness, max_group_ratio: plan?.max_group_ratio ?? 1 });
      continue;
    }
    const s = await score(outcome);
    const reached = plan?.reached ?? true;
    seen.set(key, candidates.length);
    candidates.push({ spread: spread.kind, evenness, max_group_ratio: plan?.max_group_ratio ?? 1, predicted_ms: plan?.predicted_ms ?? NaN, reached, macs: macs(outcome), calib_accuracy: s.accuracy, calib_nll: s.nll });
    // an allocation whose prediction reaches the budget beats any that does not
    if (!best || (reached && !best.reached) || (reached === best.reached && better(s, best.score))) best = { i: candidates.length - 1, outcome, score: s, reached };
  }
  return { chosen: best!.i, outcome: best!.outcome, candidates };
}

/** The calibration samples a candidate is refit on (even-indexed); the odd-indexed ones score it. */
export const fitSamples = (calibCount: number): number => Math.ceil(calibCount / 2);

/**
 * A candidate's calibration score after the recovery that will run on it, made cheap: layer-wise
 * reconstruction (fixed damp, no cross-validation) on the even-indexed calibration samples, scored on
 * the odd-indexed ones, so the choice is judged on samples the refit never saw. Each candidate's refit
 * gets the same `workMacs` (src/recover/work.ts), so candidates are compared under one bound and the
 * search's cost does not grow with the model beyond it.
 */
export function reconstructedScore(dense: ModelProto, calib: Dataset, head: Head, workMacs: number): (o: PruneOutcome) => Promise<CalibScore> {
  const fit = takeSamples(calib, Array.from({ length: fitSamples(calib.count) }, (_, i) => 2 * i));
  const held = calib.count > 1 ? takeSamples(calib, Array.from({ length: Math.floor(calib.count / 2) }, (_, i) => 2 * i + 1)) : fit;
  return async (o) => {
    const work = new WorkMeter(workMacs);
    const r = await reconstruct(o.structured?.reference ?? dense, o.model, refitWeights(o), fit, { ...DEFAULT_RECONSTRUCT, crossValidate: false, threads: QUALITY_THREADS, work, ...(o.structured ? { kept: o.structured.kept } : {}) });
    return calibScore(r.model, held, QUALITY_THREADS, head);
  };
}
