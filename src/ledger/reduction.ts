import type { Step } from '../measure/step.js';
import type { ChannelTally, Reduction, SkippedGroup } from '../prune/reduction.js';
import { percent } from './format.js';

/** Channels removed (a fraction of those the target applies to) and the groups left whole. */
export interface ChannelReduction {
  removed: number;
  skipped: SkippedGroup[];
}

/** A one-shot structured result's tally as a channel reduction. */
export function fromTally(t: ChannelTally): ChannelReduction {
  return { removed: t.eligible > 0 ? t.removed / t.eligible : 0, skipped: t.skipped };
}

/**
 * A pruning step's requested and achieved reduction, measured on its saved file against the dense step.
 * `unit` is what the request counts: prunable weights, or channels for structured pruning (then
 * `channels` must be the step's tally).
 */
export function buildReduction(dense: Step, step: Step, request: { unit: Reduction['unit']; requested: number }, channels?: ChannelReduction): Reduction {
  const gone = (a: number, b: number) => (a > 0 ? 1 - b / a : 0);
  const achieved: Reduction['achieved'] = {
    weights: step.sparsity,
    ...(channels ? { channels: channels.removed } : {}),
    params: gone(dense.nonzero_params, step.nonzero_params),
    // dense kernels execute every MAC of a zeroed weight: only removed channels count
    macs: Number.isFinite(dense.flops) && Number.isFinite(step.flops) ? gone(dense.flops, step.flops) : null,
  };
  const inUnit = request.unit === 'channels' ? (achieved.channels ?? 0) : achieved.weights;
  return {
    unit: request.unit,
    requested: request.requested,
    achieved,
    met: request.requested > 0 ? inUnit / request.requested : 1,
    skipped: channels?.skipped ?? [],
  };
}

/** One clause for the budget table: asked, achieved, and what held it back. */
export function describeReduction(r: Reduction): string {
  const got = r.unit === 'channels' ? (r.achieved.channels ?? 0) : r.achieved.weights;
  const head = `${percent(got)} of ${r.unit === 'channels' ? 'channels' : 'prunable weights'} removed where ${percent(r.requested)} was asked`;
  const held = r.skipped.filter((s) => s.reason.kind !== 'graph-output');
  if (held.length === 0) return head;
  const kinds = new Map<string, number>();
  for (const s of held) kinds.set(s.reason.kind, (kinds.get(s.reason.kind) ?? 0) + s.channels);
  return `${head}; left whole (reason per group in the notes): ${[...kinds].map(([k, n]) => `${n} channels for ${k}`).join(', ')}`;
}
