import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import { DEFAULT_CAP } from '../prune/sensitivity/allocateSparsity.js';

/**
 * `recovery-rounds`: when a run recovers in rounds, and how many. What a config may not combine with
 * them is a rule of src/config/rules.ts; the rounds themselves are the pipeline's (src/pipeline/rounds.ts):
 * prune-and-recover units at the cubic schedule's targets.
 */

/** Targets below this gain nothing measurable from rounds (50% unstructured already loses < 0.3 pt in one shot). */
export const ROUNDS_FROM_SPARSITY = 0.6;
/** what `recovery-rounds: 0` (auto) uses at and above ROUNDS_FROM_SPARSITY */
export const AUTO_ROUNDS = 4;
/**
 * Whether auto rounds under global scope also run with sensitivity allocation and keep the lower
 * calibration NLL. Off: it ranked the allocations right on cnn-bn, vit and dsconv-concat, but two chains
 * share the recovery time budget, and on the fixture resnet the halved per-round budget left layers
 * unrefit and distillation skipped (91.20% against 91.50% with one chain); `--rounds-compare-sensitivity`
 * asks for it.
 */
export const AUTO_COMPARE = false;

/** Rounds this run uses: 0 = auto (unstructured, judged recovery with a labelled calib, high target), else as set. */
export function resolveRounds(config: Pick<Config, 'recoveryRounds' | 'method' | 'recovery' | 'schedule' | 'sparsity' | 'criterion' | 'maxLayerSparsity'>, calib: Dataset | undefined): number {
  if (config.recoveryRounds !== 0) return config.recoveryRounds;
  const fits = config.method === 'unstructured' && config.recovery === 'auto' && config.schedule === 'oneshot' && config.criterion !== 'sparsegpt' && config.maxLayerSparsity >= 1 && calib?.labels && config.sparsity >= ROUNDS_FROM_SPARSITY;
  return fits ? AUTO_ROUNDS : 1;
}

/** Whether the rounds run with both allocations: asked for, or auto rounds under global scope. */
export function resolveCompare(config: Pick<Config, 'recoveryRounds' | 'roundsCompareSensitivity' | 'scope' | 'sparsity'>, rounds: number): boolean {
  // sensitivity allocation prunes no layer beyond its cap, so a higher target is left to global alone
  if (rounds <= 1 || config.scope !== 'global' || config.sparsity > DEFAULT_CAP) return false;
  return config.roundsCompareSensitivity || (config.recoveryRounds === 0 && AUTO_COMPARE);
}
