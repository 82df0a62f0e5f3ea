import { type SkipKind, type SkipReason, renderSkip } from './structured/skip.js';

/**
 * What a pruning step was asked for and what its saved file achieved, so a run that could not do what
 * was asked says so instead of passing quietly.
 */
export interface Reduction {
  /** the unit of the request: prunable weights (unstructured, N:M, hybrid) or prunable channels (structured) */
  unit: 'weights' | 'channels';
  /** fraction of that unit asked to be removed */
  requested: number;
  achieved: {
    /** fraction of the dense model's prunable weights zero or removed, counted in the saved file */
    weights: number;
    /** structured and hybrid: fraction of the channels a target applies to that were removed */
    channels?: number;
    /** fraction of the dense model's nonzero float parameters gone */
    params: number;
    /** fraction of the dense model's multiply-accumulates gone (as dense kernels execute them); null when shapes are unknown */
    macs: number | null;
  };
  /** achieved / requested in `unit`: 1 when the request was met */
  met: number;
  /** groups left whole, with why and what the user can do */
  skipped: SkippedGroup[];
}

export interface SkippedGroup {
  group: string;
  channels: number;
  reason: SkipReason;
  /** the reason rendered as one line */
  text: string;
}

/** Channels a structured target applies to and how many went. */
export interface ChannelTally {
  /** channels in groups that could be pruned, or are skipped for a limitation of the analysis or the model */
  eligible: number;
  removed: number;
  skipped: SkippedGroup[];
}

/**
 * Skips that are the model's interface or the user's own choice: their channels are outside what a
 * target asks for, so leaving them whole does not fall short of it.
 */
const BY_DESIGN: ReadonlySet<SkipKind> = new Set(['graph-output', 'graph-input', 'protected', 'embedding']);

/** Tally of a structured result's groups (a group of one channel can lose nothing and counts for none). */
export function channelTally(groups: readonly { name: string; size: number; kept: number; skip?: SkipReason }[]): ChannelTally {
  let eligible = 0;
  let removed = 0;
  const skipped: SkippedGroup[] = [];
  for (const g of groups) {
    if (g.skip) skipped.push({ group: g.name, channels: g.size, reason: g.skip, text: renderSkip(g.skip) });
    if (g.size <= 1 || (g.skip && BY_DESIGN.has(g.skip.kind))) continue;
    eligible += g.size;
    removed += g.size - g.kept;
  }
  return { eligible, removed, skipped };
}
