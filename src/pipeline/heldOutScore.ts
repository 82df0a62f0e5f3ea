import { takeSamples, type Dataset } from '../data/dataset.js';
import type { Head } from '../onnx/head.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { QUALITY_THREADS } from '../onnx/runtime/quality.js';
import type { PruneOutcome } from '../prune/pruneModel.js';
import { calibScore, type CalibScore } from '../recover/calibScore.js';
import { DEFAULT_RECONSTRUCT, reconstruct } from '../recover/reconstruct.js';
import { refitWeights } from '../recover/runRecovery.js';
import { modelCost } from '../onnx/flops.js';
import { recoveryAllowance, WorkMeter } from '../recover/work.js';

/** The calibration samples a candidate is refit on (even-indexed); the odd-indexed ones score it. */
export const fitSamples = (calibCount: number): number => Math.ceil(calibCount / 2);

/** The even-indexed calibration samples, that a candidate is refit on. */
export function fitHalf(calib: Dataset): Dataset {
  return takeSamples(calib, Array.from({ length: fitSamples(calib.count) }, (_, i) => 2 * i));
}

/** The odd-indexed calibration samples, that score a candidate (all of them when there is only one). */
export function heldOutHalf(calib: Dataset): Dataset {
  return calib.count > 1 ? takeSamples(calib, Array.from({ length: Math.floor(calib.count / 2) }, (_, i) => 2 * i + 1)) : calib;
}

/**
 * A candidate's calibration score after the recovery that will run on it, made cheap: layer-wise
 * reconstruction (fixed damp, no cross-validation) on the even-indexed calibration samples, scored on
 * the odd-indexed ones, so the choice is judged on samples the refit never saw. Each candidate's refit
 * gets the same `workMacs` (src/recover/work.ts), so candidates are compared under one bound and the
 * search's cost does not grow with the model beyond it.
 */
export function reconstructedScore(dense: ModelProto, calib: Dataset, head: Head, workMacs: number): (o: PruneOutcome) => Promise<CalibScore> {
  const fit = fitHalf(calib);
  const held = heldOutHalf(calib);
  return async (o) => {
    const work = new WorkMeter(workMacs);
    const r = await reconstruct(o.structured?.reference ?? dense, o.model, refitWeights(o), fit, { ...DEFAULT_RECONSTRUCT, crossValidate: false, threads: QUALITY_THREADS, work, ...(o.structured ? { kept: o.structured.kept } : {}) });
    return calibScore(r.model, held, QUALITY_THREADS, head);
  };
}

/**
 * reconstructedScore for `shares` candidates that split evenly what recovery may spend (`recoveryWork`,
 * src/recover/work.ts) on the samples they are refit on.
 */
export function sharedReconstructedScore(dense: ModelProto, calib: Dataset, head: Head, recoveryWork: number, shares: number): (o: PruneOutcome) => Promise<CalibScore> {
  const searchWork = recoveryAllowance({ macsPerSample: modelCost(dense).macs, calibSamples: fitSamples(calib.count) }, recoveryWork);
  return reconstructedScore(dense, calib, head, searchWork / shares);
}
