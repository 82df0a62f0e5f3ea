import { allowedWidths } from './widths.js';

/**
 * A per-layer latency table in the spirit of HALP (Shen et al., 2022): each MAC layer timed alone at
 * its dense channel counts and at a grid of kept counts along each axis a channel group sets. The
 * model's latency for an allocation is predicted as the part no layer explains plus, per layer, its dense
 * time scaled by its measured response to the kept input and output counts.
 */
export interface LayerTable {
  node: string;
  inRoot?: number;
  outRoot?: number;
  /** a depthwise layer's channels are its input and output at once: only `inCurve` applies */
  depthwise: boolean;
  cin: number;
  cout: number;
  /** the layer alone at its dense counts, ms */
  ms: number;
  /** (kept input channels, ms with the output dense), ascending; the dense count last */
  inCurve: { count: number; ms: number }[];
  outCurve: { count: number; ms: number }[];
}

/** Linear interpolation of a relative curve (ms / dense ms) at `count`; outside the grid, proportional to the nearest point. */
export function relativeAt(curve: readonly { count: number; ms: number }[], dense: number, count: number): number {
  if (curve.length === 0 || dense <= 0) return 1;
  if (count <= curve[0].count) return (curve[0].ms / dense) * (count / curve[0].count);
  for (let i = 1; i < curve.length; i++) {
    const a = curve[i - 1];
    const b = curve[i];
    if (count <= b.count) return (a.ms + ((b.ms - a.ms) * (count - a.count)) / (b.count - a.count)) / dense;
  }
  const last = curve[curve.length - 1];
  return (last.ms / dense) * (count / last.count);
}

/**
 * Predicted model latency (ms) for kept counts per group root (groups not in the map keep all channels):
 * the rest plus the layers' times, scaled by `scale` when the layers alone add up to more than the whole
 * model measured (onnxruntime fuses and overlaps what single-layer runs cannot).
 */
export function predictMs(tables: readonly LayerTable[], restMs: number, kept: ReadonlyMap<number, number>, scale = 1): number {
  let total = 0;
  for (const t of tables) {
    const kin = t.inRoot !== undefined ? (kept.get(t.inRoot) ?? t.cin) : t.cin;
    const kout = t.outRoot !== undefined ? (kept.get(t.outRoot) ?? t.cout) : t.cout;
    const a = relativeAt(t.inCurve, t.ms, kin);
    const b = t.depthwise ? 1 : relativeAt(t.outCurve, t.ms, kout);
    total += t.ms * a * b;
  }
  return restMs + scale * total;
}

/**
 * What a model's latency is made of before pruning, from one whole-model measurement: the part no layer
 * explains, and the factor that makes the layers' share add up to the rest of it.
 */
export function splitDense(tables: readonly LayerTable[], denseMs: number): { restMs: number; scale: number } {
  const layers = tables.reduce((s, t) => s + t.ms, 0);
  if (layers <= 0) return { restMs: denseMs, scale: 1 };
  return layers <= denseMs ? { restMs: denseMs - layers, scale: 1 } : { restMs: 0, scale: denseMs / layers };
}

export interface LatencyGroup {
  root: number;
  size: number;
  multiple: number;
  /** importance per unit (normalised per group, as the global ranking compares them) */
  scores: Float64Array;
  /** fewest units the allocation may keep (a per-group pruning cap, capFloor); unset: its smallest fast width */
  minKept?: number;
}

export interface LatencyAllocation {
  kept: Map<number, number>;
  predictedMs: number;
  /** the budget was reached by the prediction (false: every group at its smallest width and still above) */
  reached: boolean;
  /** steps taken, in order: which group went to which width, and the predicted ms after it */
  steps: { root: number; to: number; ms: number }[];
}

/**
 * Kept counts that maximise the importance kept under a latency budget: starting dense, repeatedly take
 * the step (one group down to its next smaller fast width) that loses the least importance per predicted
 * millisecond saved, until the prediction is within the budget (no group below its `minKept`), then
 * give back what the last coarse step overshot. Steps that save nothing are taken last.
 * Deterministic: ties go to the earlier group.
 */
export function allocateForLatency(
  groups: readonly LatencyGroup[],
  tables: readonly LayerTable[],
  dense: { restMs: number; scale: number },
  budgetMs: number,
  /** what going from `from` to `to` kept units costs (a measured loss curve); default: the importance dropped */
  cost?: (root: number, from: number, to: number) => number | undefined,
): LatencyAllocation {
  const kept = new Map(groups.map((g) => [g.root, g.size]));
  const widths = new Map(groups.map((g) => [g.root, allowedWidths(g.size, Math.max(1, g.multiple))]));
  const sorted = new Map(groups.map((g) => [g.root, Float64Array.from(g.scores).sort()]));
  const predict = (): number => predictMs(tables, dense.restMs, kept, dense.scale);
  // the prediction with one group moved to `to` and every other as kept
  const predictWith = (root: number, to: number): number => {
    const k = kept.get(root)!;
    kept.set(root, to);
    const ms = predict();
    kept.set(root, k);
    return ms;
  };
  // what keeping `lo` instead of `hi` units loses (the hi - lo least important of the hi): a measured
  // cost ranks first; the importance between them only breaks its ties
  const loss = (root: number, hi: number, lo: number): number => {
    const s = sorted.get(root)!;
    let between = 0;
    for (let r = s.length - hi; r < s.length - lo; r++) between += s[r];
    const measured = cost?.(root, hi, lo);
    return measured === undefined ? between : Math.max(0, measured) + between * 1e-9;
  };
  const steps: LatencyAllocation['steps'] = [];
  let current = predict();
  while (current > budgetMs) {
    let best: { root: number; to: number; ms: number; price: number; saved: number } | undefined;
    for (const g of groups) {
      const list = widths.get(g.root)!;
      const k = kept.get(g.root)!;
      const i = list.indexOf(k);
      if (i <= 0 || list[i - 1] < (g.minKept ?? 0)) continue;
      const to = list[i - 1];
      const ms = predictWith(g.root, to);
      const saved = current - ms;
      const price = saved > 0 ? loss(g.root, k, to) / saved : Infinity;
      if (!best || price < best.price || (price === Infinity && best.price === Infinity && saved > best.saved)) best = { root: g.root, to, ms, price, saved };
    }
    if (!best) break;
    kept.set(best.root, best.to);
    current = best.ms;
    steps.push({ root: best.root, to: best.to, ms: best.ms });
  }
  // width steps are coarse, so the step that reached the budget often saved more than it had to: give
  // the slack back, each time to the group whose next larger width restores the most per millisecond
  // added, while that still fits the budget
  while (current <= budgetMs) {
    let best: { root: number; to: number; ms: number; value: number } | undefined;
    for (const g of groups) {
      const list = widths.get(g.root)!;
      const k = kept.get(g.root)!;
      const i = list.indexOf(k);
      if (i < 0 || i >= list.length - 1) continue;
      const to = list[i + 1];
      const ms = predictWith(g.root, to);
      if (ms > budgetMs) continue;
      const value = ms > current ? loss(g.root, to, k) / (ms - current) : Infinity;
      if (!best || value > best.value) best = { root: g.root, to, ms, value };
    }
    if (!best) break;
    kept.set(best.root, best.to);
    current = best.ms;
  }
  return { kept, predictedMs: current, reached: current <= budgetMs, steps };
}

/**
 * How a latency target's cut is spread over the channel groups: cost-ranked steps under a per-group cap
 * placed by `evenness` (capAtEvenness), or the same fraction from every group, as `--scope layer` cuts.
 */
export type Spread = { kind: 'capped'; evenness: number } | { kind: 'uniform' };

/**
 * The uniform cut that reaches the budget: the smallest fraction, on a grid of 1%, whose kept counts
 * (`keptAt`, the layer-scope allocation on fast widths) the prediction puts within the budget, up to
 * `maxCap`. Nothing here is weighed by loss curves measured before recovery, which price each group
 * alone and may favour cuts that recovery repairs less well.
 */
export function uniformForLatency(
  keptAt: (fraction: number) => Map<number, number>,
  tables: readonly LayerTable[],
  dense: { restMs: number; scale: number },
  budgetMs: number,
  maxCap = 1,
): LatencyAllocation & { fraction: number } {
  for (let i = 0; ; i++) {
    const fraction = Math.min(maxCap, i / 100);
    const kept = keptAt(fraction);
    const predictedMs = predictMs(tables, dense.restMs, kept, dense.scale);
    if (predictedMs <= budgetMs || fraction >= maxCap) return { kept, predictedMs, reached: predictedMs <= budgetMs, steps: [], fraction };
  }
}

/** Fewest units a group of `size` may keep when no group may lose more than `ratio` of its units. */
export function capFloor(size: number, ratio: number): number {
  return Math.max(1, Math.ceil(size * (1 - ratio) - 1e-9));
}

/**
 * The tightest per-group pruning cap (no group loses more than this fraction, as Torch-Pruning's
 * max_pruning_ratio) under which the predicted latency can still reach the budget: every group at its
 * smallest fast width the cap allows. Under it the allocation has to take about the same fraction from
 * every group (the even cut that meets the budget); a looser cap lets the costs concentrate the cut.
 * Returns `maxCap` when even that cannot reach the budget. Bisection on the prediction, deterministic.
 */
export function evenCap(groups: readonly LatencyGroup[], tables: readonly LayerTable[], dense: { restMs: number; scale: number }, budgetMs: number, maxCap = 1): number {
  const widths = groups.map((g) => ({ root: g.root, size: g.size, list: allowedWidths(g.size, Math.max(1, g.multiple)) }));
  const fits = (cap: number): boolean => {
    const kept = new Map(widths.map((g) => [g.root, g.list.find((w) => w >= capFloor(g.size, cap)) ?? g.size]));
    return predictMs(tables, dense.restMs, kept, dense.scale) <= budgetMs;
  };
  if (!fits(maxCap)) return maxCap;
  let lo = 0;
  let hi = maxCap;
  for (let i = 0; i < 40 && hi - lo > 1e-6; i++) {
    const mid = (lo + hi) / 2;
    if (fits(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * The per-group cap at `evenness` between the loosest cap allowed (0: the costs alone decide where the
 * cut goes) and the tightest that still reaches the budget (1: about the same fraction from every group).
 */
export function capAtEvenness(evenness: number, even: number, maxCap = 1): number {
  return maxCap - Math.min(1, Math.max(0, evenness)) * (maxCap - even);
}

/** What the latency allocation predicted, for the ledger. */
export interface LatencyPlan {
  batch: number;
  dense_ms: number;
  budget_ms: number;
  /** the dense model's time no MAC layer explains (activations, pooling, session overhead) */
  rest_ms: number;
  /** factor on the layers' timed share (below 1 when the layers alone add up to more than the model) */
  layer_scale: number;
  predicted_ms: number;
  /** false: every group reached its smallest fast width before the prediction met the budget */
  reached: boolean;
  /** kept channels per channel group, in the analysis' group order */
  kept: number[];
  /** no group lost more than this fraction of its channels (capAtEvenness) */
  max_group_ratio?: number;
  /** where that cap sat between the loosest allowed (0) and the tightest that reaches the budget (1); 1 for a uniform cut */
  evenness?: number;
  /** `uniform`: the same fraction from every group (max_group_ratio is the largest after rounding to fast widths) */
  spread?: Spread['kind'];
  layers: LayerTable[];
}
