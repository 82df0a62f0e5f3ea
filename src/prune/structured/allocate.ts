import type { Importance } from '../criteria/importance.js';

export interface AllocationOptions {
  /** fraction of prunable channels to remove */
  sparsity: number;
  /** one threshold for all groups, or the same fraction in each group */
  scope: 'global' | 'layer';
  /** kept channel counts become multiples of this (1 = no rounding) */
  roundTo: number;
  /** global scope: no group loses more than this fraction of its units (1 or unset = no cap) */
  maxLayerSparsity?: number;
}

export interface AllocGroup {
  root: number;
  size: number;
}

/** Kept count rounded to a multiple of `roundTo`, never zero and never above the group size. */
export function roundKept(kept: number, size: number, roundTo: number): number {
  const floor = Math.min(size, Math.max(1, roundTo));
  if (roundTo <= 1) return Math.max(floor, Math.min(size, kept));
  if (size <= roundTo) return size;
  const r = Math.round(kept / roundTo) * roundTo;
  return Math.min(size, Math.max(floor, r));
}

/** Per group, the channel count to keep. Importance is normalised per group before a global comparison. */
export function allocate(groups: readonly AllocGroup[], importance: Importance, opts: AllocationOptions): Map<number, number> {
  const kept = new Map<number, number>();
  if (opts.scope === 'layer') {
    for (const g of groups) kept.set(g.root, roundKept(Math.round(g.size * (1 - opts.sparsity)), g.size, opts.roundTo));
    return kept;
  }
  const total = groups.reduce((n, g) => n + g.size, 0);
  const target = Math.round(total * opts.sparsity);
  const all: { score: number; root: number }[] = [];
  for (const g of groups) {
    const s = importance.get(g.root)!;
    let mean = 0;
    for (const v of s) mean += v;
    mean = mean / s.length || 1;
    for (const v of s) all.push({ score: v / mean, root: g.root });
    kept.set(g.root, g.size);
  }
  all.sort((a, b) => a.score - b.score);
  const floor = Math.max(1, opts.roundTo);
  const cap = opts.maxLayerSparsity ?? 1;
  const minKept = new Map(groups.map((g) => [g.root, Math.max(floor, Math.ceil(g.size * (1 - cap) - 1e-9))]));
  let removed = 0;
  for (const c of all) {
    if (removed >= target) break;
    const k = kept.get(c.root)!;
    if (k <= minKept.get(c.root)!) continue;
    kept.set(c.root, k - 1);
    removed++;
  }
  for (const g of groups) kept.set(g.root, roundKept(kept.get(g.root)!, g.size, opts.roundTo));
  return kept;
}

/** Keep mask of one group: the `keep` most important channels (ties keep the earlier channel). */
export function keepMask(scores: Float64Array, keep: number): Uint8Array {
  const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b);
  const mask = new Uint8Array(scores.length);
  for (let i = 0; i < keep; i++) mask[order[i]] = 1;
  return mask;
}
