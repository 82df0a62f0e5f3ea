import type { Config } from '../../config/schema.js';
import type { Dataset } from '../../data/dataset.js';
import { UserError } from '../../errors.js';
import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import type { Progress } from '../../io/progress.js';
import { CLEAR_HELDOUT_GAIN, DEFAULT_DISTILL, distill, type DistillResult } from './distill.js';
import { describeGap, UnsupportedOp, type DistillGap } from './gradients.js';
import type { Head } from '../../onnx/head.js';
import { defaultHead } from '../../onnx/runtime/classifier.js';
import { QUALITY_THREADS } from '../../onnx/runtime/quality.js';
import type { SafetyStop } from '../work.js';

export interface DistillStage {
  kind: 'distilled';
  model: ModelProto;
  result: DistillResult;
  seconds: number;
  /** one line for the ledger step's description */
  summary: string;
}

/** Auto recovery went on without distillation: what stood in the way. */
export interface DistillSkipped {
  kind: 'skipped';
  gap: DistillGap;
}

/**
 * Distillation as a recovery stage. For `--recovery distill` an op without a gradient rule is a
 * UserError naming it; for `auto` (`optional`) the stage is skipped and says why.
 */
export async function distillStage(
  dense: ModelProto,
  current: ModelProto,
  calib: Dataset,
  masked: readonly string[],
  config: Config,
  progress: Progress,
  opts: { optional: boolean; maxEpochs: number; stop?: SafetyStop; head?: Head; outputs?: readonly string[] },
): Promise<DistillStage | DistillSkipped> {
  const toward = opts.outputs ? 'relative squared error to dense' : 'KL';
  const t0 = performance.now();
  progress.stage({ kind: 'recover', work: 'distill', detail: 'distillation toward the dense model on the calibration set' });
  let result: DistillResult;
  try {
    result = await distill(dense, current, calib, new Set(masked), {
      ...DEFAULT_DISTILL,
      threads: QUALITY_THREADS,
      maxEpochs: opts.maxEpochs,
      ...(opts.stop ? { stop: opts.stop } : {}),
      onEpoch: (e) => progress.note(`recovery: distill epoch ${e.epoch}: train loss ${e.train_loss.toFixed(4)}, held-out ${toward} ${e.heldout_kl.toFixed(4)} (${e.seconds.toFixed(1)} s)`),
    }, opts.outputs ? { outputs: opts.outputs } : (opts.head ?? defaultHead(current, config.output)));
  } catch (e) {
    if (!(e instanceof UnsupportedOp)) throw e;
    if (opts.optional) return { kind: 'skipped', gap: e.gap };
    throw new UserError(`--recovery distill: cannot differentiate ${e.message}; use --recovery reconstruct, or --recovery command with your own fine-tuning`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const r = result;
  const held = r.heldoutCount > 0 ? `${r.heldoutCount} held-out samples` : 'the training samples (too few to hold any out)';
  const acc = (a?: number) => (a === undefined ? '' : `, accuracy ${(a * 100).toFixed(1)}%`);
  const how = r.improved ? `best epoch ${r.bestEpoch} of ${r.epochs.length}` : `no epoch of ${r.epochs.length} beat the input, weights unchanged`;
  const stop = r.stopped === 'cut-short' ? '; cut short by the recovery-time-budget safety stop' : r.stopped === 'patience' ? `; stopped after ${DEFAULT_DISTILL.patience} epochs without a held-out gain of ${CLEAR_HELDOUT_GAIN * 100}%` : '';
  const target = opts.outputs
    ? `toward the dense model's outputs ${opts.outputs.map((o) => `'${o}'`).join(', ')} (relative MSE, each output alike)`
    : `toward the dense model's logits (T = ${DEFAULT_DISTILL.temperature}${calib.labels && DEFAULT_DISTILL.labelWeight > 0 ? `, + ${DEFAULT_DISTILL.labelWeight} x label cross-entropy` : ''})`;
  const summary =
    `distilled ${r.parameters} parameters in ${r.trainables} tensors ${target} and the outputs of its pruned layers (relative MSE, weight ${DEFAULT_DISTILL.hintWeight}; Adam, masks held) on ${r.trainCount} calibration samples; ${how}${stop}; ` +
    `on ${held}: ${toward === 'KL' ? 'KL to dense' : toward} ${r.before.kl.toFixed(4)} -> ${r.after.kl.toFixed(4)}${acc(r.before.accuracy)}${r.after.accuracy !== undefined ? ` -> ${(r.after.accuracy * 100).toFixed(1)}%` : ''}`;
  return { kind: 'distilled', model: r.model, result: r, seconds, summary };
}

/** The one line a run prints (and the ledger keeps) when auto recovery goes on without distillation. */
export function skipReason(gap: DistillGap): string {
  switch (gap.kind) {
    case 'opset':
      return `at opset ${gap.opset}, the gradient of ${gap.op} node '${gap.node}' needs ${gap.needs}; re-export at a newer opset to distil`;
    case 'precision':
      return `${describeGap(gap)}; reconstruction still refits the ${gap.type} weights`;
    default:
      return `no gradient for ${describeGap(gap)}`;
  }
}
