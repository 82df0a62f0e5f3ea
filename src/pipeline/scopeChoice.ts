import type { ConcreteScope, Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import type { Head } from '../onnx/head.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { modelCost } from '../onnx/flops.js';
import { pruneModel, type PruneContext, type PruneOutcome } from '../prune/pruneModel.js';
import { QUALITY_THREADS } from '../onnx/runtime/quality.js';
import { calibScore, type CalibScore } from '../recover/calibScore.js';
import { heldOutHalf, sharedReconstructedScore } from './heldOutScore.js';

/**
 * The allocations `scope: auto` weighs its loss-per-MAC cut against. The curves price each group pruned
 * alone, and their sum can miss how cuts combine: on the real-world CIFAR-10 CNN at 30% the curves put
 * 75% of the most sensitive conv's channels on the cut (its loss flattened past a quarter, and it holds
 * the most MACs), the prune fell to chance and recovery brought it to 29.1% where layer and global
 * scope recovered to 50.5% and 51.1% (dense 63.3%).
 */
export const AUTO_ALTERNATIVES: readonly ConcreteScope[] = ['layer', 'global'];

/** Fewer scoring samples than this cannot tell the cuts apart: the loss-per-MAC cut ships unweighed. */
export const MIN_SCORED = 20;

export interface ScopeCandidate {
  scope: ConcreteScope;
  /** held-out calibration score of the pruned model as cut */
  before: CalibScore;
  /** the same after a quick reconstruction, when the cut before recovery did not settle it */
  after?: CalibScore;
  macs: number;
}

/**
 * Whether `c` replaces the cut that would ship, both scored on the same `n` samples: a lower NLL and an
 * accuracy higher by more than two standard errors of the difference, taken as for independent samples
 * (larger than the paired one: conservative). The loss-per-MAC cut is chosen for what it saves, so a
 * candidate must be clearly better to replace it: on the real-world MNIST CNN at 30% global scope scored
 * one sample of 256 higher and would have run 1.5x instead of 2.0x.
 */
export function replaces(c: CalibScore, incumbent: CalibScore, n: number): boolean {
  const se = Math.sqrt((c.accuracy * (1 - c.accuracy) + incumbent.accuracy * (1 - incumbent.accuracy)) / Math.max(1, n));
  return c.nll < incumbent.nll && c.accuracy - incumbent.accuracy > 2 * se;
}

/** The score that ships: the first, unless a later one replaces the best so far. */
export function pickScore(scores: readonly CalibScore[], n: number): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (replaces(scores[i], scores[best], n)) best = i;
  return best;
}

/**
 * The structured cut `scope: auto` ships with a labelled calibration set: its `sensitivity-macs` cut
 * (`first`), or layer or global scope when one of them scores better on the held-out calibration samples
 * (heldOutScore.ts, `replaces`). As cut, before any recovery, the cuts are scored at the cost of one pass
 * each: without recovery that decides; with it, when no alternative is ahead on both NLL and accuracy
 * there the loss-per-MAC cut ships. Otherwise recovery may change the order, so
 * every cut is scored again after the same quick reconstruction (within a third of what recovery may
 * spend on the samples it refits on) and that decides. Alternatives are pruned again rather than held,
 * so at most two outcomes are in memory.
 */
export async function chooseAutoScope(
  first: PruneOutcome,
  dense: ModelProto,
  config: Config,
  ctx: PruneContext & { calib: Dataset; head: Head },
): Promise<{ pruned: PruneOutcome; candidates: ScopeCandidate[]; chosen: number; note: string }> {
  // nothing is refit without recovery, so every sample can score the cuts as made
  const held = config.recovery === 'none' ? ctx.calib : heldOutHalf(ctx.calib);
  const cut = (scope: ConcreteScope): Promise<PruneOutcome> => pruneModel(dense, { ...config, scope }, ctx);
  if (held.count < MIN_SCORED) {
    return { pruned: first, candidates: [], chosen: 0, note: `scope auto: sensitivity-macs ships without being weighed against layer and global scope: ${held.count} calibration samples would score them, fewer than ${MIN_SCORED}` };
  }
  const candidates: ScopeCandidate[] = [{ scope: first.scope ?? 'sensitivity-macs', before: await calibScore(first.model, held, QUALITY_THREADS, ctx.head), macs: modelCost(first.model).macs }];
  for (const scope of AUTO_ALTERNATIVES) {
    const o = await cut(scope);
    candidates.push({ scope, before: await calibScore(o.model, held, QUALITY_THREADS, ctx.head), macs: modelCost(o.model).macs });
  }
  // without recovery the cut ships as made, and that score decides; before recovery a cut that recovers
  // far better can still sit near chance, so any alternative ahead on both scores is worth the
  // reconstruction that decides
  let chosen = config.recovery === 'none' ? pickScore(candidates.map((c) => c.before), held.count) : 0;
  if (config.recovery !== 'none' && candidates.slice(1).some((c) => c.before.nll < candidates[0].before.nll && c.before.accuracy > candidates[0].before.accuracy)) {
    const score = sharedReconstructedScore(dense, ctx.calib, ctx.head, config.recoveryWork, candidates.length);
    candidates[0].after = await score(first);
    for (const c of candidates.slice(1)) c.after = await score(await cut(c.scope));
    chosen = pickScore(candidates.map((c) => c.after!), held.count);
  }
  const pruned = chosen === 0 ? first : { ...(await cut(candidates[chosen].scope)), scope: candidates[chosen].scope };
  const text = (sc: CalibScore): string => `${(sc.accuracy * 100).toFixed(2)}% NLL ${sc.nll.toFixed(3)}`;
  const rows = candidates.map((c, i) => `${i === chosen ? '*' : ''}${c.scope} ${text(c.before)}${c.after ? ` -> ${text(c.after)}` : ''} (${(c.macs / candidates[0].macs).toFixed(2)}x its MACs)`);
  const how = candidates[0].after ? 'as cut, then after a quick reconstruction on the even-indexed ones' : 'as cut';
  const note =
    `scope auto: the sensitivity-macs cut weighed against layer and global scope on ${config.recovery === 'none' ? 'the calibration samples' : 'the odd-indexed calibration samples'}, ${how} (accuracy, NLL; MACs against the sensitivity-macs cut): ${rows.join(', ')}; ` +
    (chosen === 0 ? 'sensitivity-macs ships' : `${candidates[chosen].scope} ships (lower held-out NLL and accuracy higher by more than two standard errors${candidates[0].after ? ' after the reconstruction' : ''})`);
  return { pruned, candidates, chosen, note };
}
