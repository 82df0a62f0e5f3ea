/**
 * What recovery keeps a stage on, measured on the calibration set so the evaluation set never decides
 * which model ships: the labels when the set has them; without labels, how closely the model follows the
 * dense one, as KL and top-1 agreement through a classifier head, or, in the fidelity task, as the
 * relative squared error of every compared output (the quantity distillation minimises there).
 */
import type { Dataset } from '../data/dataset.js';
import type { Head } from '../onnx/head.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { boundedBatch } from '../onnx/runtime/activationBudget.js';
import { captureActivations, sessionFromModel } from '../onnx/runtime/session.js';
import { calibScorer } from '../prune/sensitivity/calibScorer.js';
import { better, calibScore } from './calibScore.js';
import { relativeSquaredError } from './distill/loss.js';

export type StageScore =
  /** top-1 accuracy and mean NLL of the labels */
  | { against: 'labels'; accuracy: number; nll: number }
  /** mean KL(dense || model) and top-1 agreement with the dense model, through the classifier head */
  | { against: 'dense'; kl: number; agreement: number }
  /** mean over the compared outputs of ‖model − dense‖² / ‖dense‖² */
  | { against: 'outputs'; error: number };

export interface StageJudge {
  score(model: ModelProto): Promise<StageScore>;
}

/** What a run judges recovery against: a classifier head, or (the fidelity task) the outputs compared. */
export type Judged = { head: Head } | { outputs: readonly string[] };

/**
 * The judge for this calibration set and task. Without labels the dense model is run once here, and
 * every score compares against it.
 */
export async function stageJudge(dense: ModelProto, calib: Dataset, judged: Judged, threads: number): Promise<StageJudge> {
  if ('outputs' in judged) return outputsJudge(dense, calib, judged.outputs, threads);
  const head = judged.head;
  if (calib.labels) {
    return { score: async (model) => ({ against: 'labels', ...(await calibScore(model, calib, threads, head)) }) };
  }
  const scorer = await calibScorer(dense, calib, { maxSamples: calib.count, threads, head });
  return {
    score: async (model) => {
      const p = await scorer.score(model);
      return { against: 'dense', kl: p.nll, agreement: p.accuracy };
    },
  };
}

async function outputsJudge(dense: ModelProto, calib: Dataset, outputs: readonly string[], threads: number): Promise<StageJudge> {
  const run = async (model: ModelProto): Promise<Map<string, Float32Array>> => {
    const session = await sessionFromModel(model, threads, { lean: true });
    try {
      const got = await captureActivations(session, calib, outputs, boundedBatch(model, 256));
      return new Map(outputs.map((o) => [o, got.get(o)!.data]));
    } finally {
      await session.release();
    }
  };
  const reference = await run(dense);
  return { score: async (model) => ({ against: 'outputs', error: relativeSquaredError(await run(model), reference) }) };
}

/** Whether `a` is a better model than `b` on the same judge: lower loss first, the agreement or accuracy breaks exact ties. */
export function improves(a: StageScore, b: StageScore): boolean {
  if (a.against === 'labels' && b.against === 'labels') return better(a, b);
  if (a.against === 'dense' && b.against === 'dense') return a.kl < b.kl || (a.kl === b.kl && a.agreement > b.agreement);
  if (a.against === 'outputs' && b.against === 'outputs') return a.error < b.error;
  throw new Error(`improves: scores against ${a.against} and ${b.against} do not compare`);
}

/** The score as a step description states it. */
export function scoreText(s: StageScore): string {
  switch (s.against) {
    case 'labels':
      return `calib acc ${(s.accuracy * 100).toFixed(2)}%, NLL ${s.nll.toFixed(4)}`;
    case 'dense':
      return `calib agreement with dense ${(s.agreement * 100).toFixed(2)}%, KL ${s.kl.toFixed(4)}`;
    case 'outputs':
      return `calib relative squared error to dense outputs ${s.error.toFixed(5)}`;
  }
}

/** The ledger's record of a stage's score before and after it (`steps[].recovery`). */
export interface ScoreRecord {
  calib_accuracy_before?: number;
  calib_accuracy_after?: number;
  calib_nll_before?: number;
  calib_nll_after?: number;
  calib_agreement_before?: number;
  calib_agreement_after?: number;
  calib_kl_before?: number;
  calib_kl_after?: number;
  calib_output_error_before?: number;
  calib_output_error_after?: number;
}

export function scoreRecord(before: StageScore, after: StageScore): ScoreRecord {
  if (before.against === 'labels' && after.against === 'labels') {
    return { calib_accuracy_before: before.accuracy, calib_accuracy_after: after.accuracy, calib_nll_before: before.nll, calib_nll_after: after.nll };
  }
  if (before.against === 'dense' && after.against === 'dense') {
    return { calib_agreement_before: before.agreement, calib_agreement_after: after.agreement, calib_kl_before: before.kl, calib_kl_after: after.kl };
  }
  if (before.against === 'outputs' && after.against === 'outputs') return { calib_output_error_before: before.error, calib_output_error_after: after.error };
  throw new Error(`scoreRecord: scores against ${before.against} and ${after.against} do not compare`);
}
