/**
 * Channel widths the runtime executes fast. onnxruntime's CPU kernels block channels by the vector
 * width (a Conv's output channels in steps of 8 or 16, input channels in steps of 4 on AVX-512), so a
 * kept count between two blocks costs as much as the next block, or more when a slower kernel takes
 * over. Which multiple pays is read from a measured curve of latency against channel count, never
 * assumed; kept counts are then snapped to multiples of it.
 */

/** Latency of one layer kind against a channel count: each entry the best of several timed runs. */
export interface WidthCurve {
  counts: readonly number[];
  ms: readonly number[];
}

/** Multiples a width may be rounded to; the probe window holds at least two widths of each. */
export const WIDTH_MULTIPLES = [1, 2, 4, 8, 16] as const;

/** A multiple is good enough when its widths run within this of the best multiple's, relative to the trend. */
export const WIDTH_TOLERANCE = 0.015;

export interface MultipleChoice {
  multiple: number;
  /** per candidate: mean of trend / measured latency at its widths, relative to the best candidate */
  scores: { multiple: number; score: number }[];
}

/** Least-squares line through (count, ms): the smooth part of the curve (fixed overhead plus a cost per channel). */
function trend(curve: WidthCurve): (c: number) => number {
  const n = curve.counts.length;
  const mx = curve.counts.reduce((a, b) => a + b, 0) / n;
  const my = curve.ms.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  curve.counts.forEach((c, i) => {
    sxy += (c - mx) * (curve.ms[i] - my);
    sxx += (c - mx) * (c - mx);
  });
  const slope = sxx > 0 ? sxy / sxx : 0;
  return (c) => my + slope * (c - mx);
}

/**
 * The multiple that pays on a measured curve: the smallest one whose widths run (almost) as far below
 * the curve's trend as the best multiple's. Judging against the trend keeps a fixed overhead, which
 * makes every larger width look cheaper per channel, from favouring the coarsest grid. On a step curve
 * (a kernel processes 16 channels at a time) the step ends sit below the trend, so 16 wins; where only
 * off-block widths are slow, the block wins; on a curve proportional to the count every width sits on
 * the trend, so 1 wins.
 */
export function chooseMultiple(curve: WidthCurve, tolerance = WIDTH_TOLERANCE): MultipleChoice {
  if (curve.counts.length < 2) return { multiple: 1, scores: [] };
  const fit = trend(curve);
  const scores: { multiple: number; score: number }[] = [];
  for (const m of WIDTH_MULTIPLES) {
    const at = curve.counts.flatMap((c, i) => (c % m === 0 && curve.ms[i] > 0 ? [fit(c) / curve.ms[i]] : []));
    if (at.length > 0) scores.push({ multiple: m, score: at.reduce((a, b) => a + b, 0) / at.length });
  }
  if (scores.length === 0) return { multiple: 1, scores: [] };
  const best = Math.max(...scores.map((s) => s.score));
  const relative = scores.map((s) => ({ multiple: s.multiple, score: s.score / best }));
  return { multiple: relative.find((s) => s.score >= 1 - tolerance)!.multiple, scores: relative };
}

/** A group to snap: its size, the multiple its layers run fast at, and the count the allocation asked for. */
export interface SnapGroup {
  root: number;
  size: number;
  multiple: number;
  kept: number;
  /**
   * importance of each unit, any order; only sums over the least important units are used, to choose
   * which group moves when the total must be corrected
   */
  scores: Float64Array;
  /**
   * the predicted loss at a kept count, by the measure the allocation itself minimised (a sensitivity
   * curve): when every group has one, width steps go where it predicts the least loss per channel, with
   * `scores` deciding between equal predictions (a flat stretch of a curve predicts none)
   */
  lossAt?: (kept: number) => number;
  /** fewest units the group may keep (a per-group pruning cap): widths below it are not taken */
  minKept?: number;
}

/**
 * Widths a group may keep: the multiples of its multiple up to its size, the size itself, and below the
 * multiple its halvings (8, 4, 2, 1 under 16), so a group no wider than one block can still be pruned to
 * a width that divides the block evenly. Without `halvings`, whole blocks only: a kernel that runs a
 * part-filled block no faster than a full one (INT8 3x3 convs on AVX-512 VNNI) gains nothing below it.
 */
export function allowedWidths(size: number, multiple: number, halvings = true): number[] {
  const out = new Set<number>();
  if (halvings) for (let w = multiple / 2; w >= 1 && Number.isInteger(w); w /= 2) if (w < size) out.add(w);
  for (let w = multiple; w < size; w += multiple) out.add(w);
  out.add(size);
  return [...out].sort((a, b) => a - b);
}

/**
 * The widths a group may take while the total is corrected: its multiples and its size, and of the
 * halvings below the multiple only those at or above the nearest allowed width under its asked count.
 * A halving is a small step that fits any remaining gap; taken one after another they would walk a group
 * the allocation kept at 12 of 32 down to 1 (on the real-world MNIST CNN at 50%, a 64-point loss).
 */
function correctable(widths: readonly number[], multiple: number, kept: number): number[] {
  const under = widths.filter((w) => w <= kept);
  const floor = under.length ? under[under.length - 1] : widths[0];
  return widths.filter((w) => w >= Math.min(multiple, floor));
}

function nearest(widths: readonly number[], kept: number): number {
  let best = widths[0];
  for (const w of widths) if (Math.abs(w - kept) < Math.abs(best - kept) || (Math.abs(w - kept) === Math.abs(best - kept) && w > best)) best = w;
  return best;
}

/**
 * Kept counts on fast widths, as close to the allocation as the widths allow: each group goes to its
 * nearest allowed width (ties keep more), then whole width steps move between groups while that brings
 * the total removed closer to what the allocation removed (never into halvings below the width under a
 * group's asked count, `correctable`): a step down where it adds the least
 * predicted loss per unit (when every group has `lossAt`), then where it drops the least important
 * units, a step up where it restores the most. No group goes below its `minKept` (the widths under it
 * are not offered), so a per-group cap the allocation kept holds after snapping too. Deterministic: ties
 * go to the lower root.
 */
export function snapToWidths(groups: readonly SnapGroup[], halvings = true): Map<number, number> {
  const widths = new Map(groups.map((g) => [g.root, correctable(allowedWidths(g.size, Math.max(1, g.multiple), halvings).filter((w) => w >= (g.minKept ?? 0) || w === g.size), Math.max(1, g.multiple), g.kept)]));
  const kept = new Map(groups.map((g) => [g.root, nearest(widths.get(g.root)!, g.kept)]));
  const sorted = new Map(groups.map((g) => [g.root, Float64Array.from(g.scores).sort()]));
  const target = groups.reduce((n, g) => n + g.size - g.kept, 0);
  const removed = () => groups.reduce((n, g) => n + g.size - kept.get(g.root)!, 0);
  /** mean importance of the units between two kept counts (the least important go first) */
  const meanBetween = (g: SnapGroup, lo: number, hi: number): number => {
    const s = sorted.get(g.root)!;
    const units = s.length;
    let sum = 0;
    // keeping `hi` of `units` drops the units - hi least important; the band is ranks units-hi .. units-lo
    for (let r = units - hi; r < units - lo; r++) sum += s[r];
    return sum / Math.max(1, hi - lo);
  };
  // a predicted loss and an importance are not on one scale: the losses rank only when every group has one
  const byLoss = groups.length > 0 && groups.every((g) => g.lossAt);
  /** what the units between two kept counts are worth, per unit: [predicted loss (0 without curves), importance] */
  const stepCost = (g: SnapGroup, lo: number, hi: number): [number, number] => {
    const loss = byLoss ? (g.lossAt!(lo) - g.lossAt!(hi)) / Math.max(1, hi - lo) : 0;
    // a curve that cannot say (a non-finite score) makes the step as costly as any
    return [Number.isFinite(loss) ? loss : Infinity, meanBetween(g, lo, hi)];
  };
  const less = (a: [number, number], b: [number, number]): boolean => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  const negate = (c: [number, number]): [number, number] => [-c[0], -c[1]];
  for (let guard = 0; guard < 10_000; guard++) {
    const gap = target - removed();
    let best: { root: number; to: number; cost: [number, number] } | undefined;
    for (const g of groups) {
      const list = widths.get(g.root)!;
      const i = list.indexOf(kept.get(g.root)!);
      if (gap > 0 && i > 0) {
        const to = list[i - 1];
        const step = kept.get(g.root)! - to;
        if (Math.abs(gap - step) >= Math.abs(gap)) continue;
        const cost = stepCost(g, to, kept.get(g.root)!);
        if (!best || less(cost, best.cost)) best = { root: g.root, to, cost };
      } else if (gap < 0 && i < list.length - 1) {
        const to = list[i + 1];
        const step = to - kept.get(g.root)!;
        if (Math.abs(gap + step) >= Math.abs(gap)) continue;
        // the most important units restored first: minimise the negated worth
        const cost = negate(stepCost(g, kept.get(g.root)!, to));
        if (!best || less(cost, best.cost)) best = { root: g.root, to, cost };
      }
    }
    if (!best) break;
    kept.set(best.root, best.to);
  }
  return kept;
}
