import { SENSITIVITY_CAP } from '../../config/rules.js';
import { UserError } from '../../errors.js';

/** A layer's measured sensitivity: calibration loss increase over the dense model when it alone is pruned. */
export interface LayerCurve {
  /** units the global target counts (weights, or channels for structured groups) */
  size: number;
  /** (ratio, loss increase) points; ratio 0 is implied at increase 0 */
  points: readonly { ratio: number; increase: number }[];
  /** units this layer may lose at most (structured groups keep at least one channel); default `size` */
  maxUnits?: number;
  /**
   * what pruning one unit saves (MACs per channel of a structured group); with `costExponent` > 0 the
   * allocation ranks loss per unit saved instead of loss per unit. Missing or <= 0: treated as the
   * smallest positive cost of the other layers (never preferred for its cost)
   */
  unitCost?: number;
}

export interface AllocationOptions {
  /** no layer is pruned beyond this fraction; default 0.95 */
  cap?: number;
  /**
   * 0 (default): fill cheapest predicted loss per unit first (plain sensitivity). 1: cheapest predicted
   * loss per unit of `unitCost` saved (NetAdapt/AMC-style: remove where it hurts least per MAC saved);
   * between: loss / unitCost^e. Ties (e.g. flat curves) go to the layer that saves most per unit.
   */
  costExponent?: number;
}

export interface Allocation {
  /** units pruned per layer, in input order; their sum is exactly round(target * total) */
  pruned: number[];
  ratios: number[];
  /** sum of the predicted loss increases of the allocation (the additive model the allocation minimises) */
  predictedIncrease: number;
}

/** declared with the rules that refuse targets above it */
export const DEFAULT_CAP = SENSITIVITY_CAP;

interface Pt {
  r: number;
  f: number;
}

/** Monotone (pruning more never predicted to help), clamped at >= 0, extended or cut to end at `cap`. */
export function monotoneCurve(points: LayerCurve['points'], cap: number): Pt[] {
  const pts: Pt[] = [{ r: 0, f: 0 }];
  for (const p of [...points].sort((a, b) => a.ratio - b.ratio)) {
    if (!(p.ratio > pts[pts.length - 1].r)) continue;
    pts.push({ r: p.ratio, f: Math.max(pts[pts.length - 1].f, p.increase, 0) });
  }
  const at = (r: number): number => {
    for (let i = 1; i < pts.length; i++) {
      if (r <= pts[i].r) return pts[i - 1].f + ((pts[i].f - pts[i - 1].f) * (r - pts[i - 1].r)) / (pts[i].r - pts[i - 1].r);
    }
    // beyond the last measured ratio: continue the last segment's slope (at least as steep as the average so far)
    const a = pts[pts.length - 2] ?? { r: 0, f: 0 };
    const b = pts[pts.length - 1];
    const slope = Math.max(b.r > a.r ? (b.f - a.f) / (b.r - a.r) : 0, b.r > 0 ? b.f / b.r : 0);
    return b.f + slope * (r - b.r);
  };
  const out = pts.filter((p) => p.r < cap);
  out.push({ r: cap, f: at(cap) });
  return out;
}

/** Lower convex hull of points sorted by r: the convex relaxation a marginal-cost fill solves exactly. */
function lowerHull(pts: Pt[]): Pt[] {
  const hull: Pt[] = [];
  for (const p of pts) {
    while (hull.length >= 2) {
      const a = hull[hull.length - 2];
      const b = hull[hull.length - 1];
      // drop b when it lies on or above the line a -> p
      if ((b.f - a.f) * (p.r - a.r) >= (p.f - a.f) * (b.r - a.r)) hull.pop();
      else break;
    }
    hull.push(p);
  }
  return hull;
}

/**
 * Per-layer pruning amounts whose weighted mean is exactly `target` (in whole units), minimising the sum
 * of predicted loss increases. Each curve is made monotone and convexified; then hull segments of all
 * layers are filled cheapest loss-per-unit first (the Lagrangian optimum of the relaxation), and the
 * fractional units are rounded by largest remainder, so steep (sensitive) layers are pruned least.
 */
export function allocateSparsity(layers: readonly LayerCurve[], target: number, opts: AllocationOptions = {}): Allocation {
  const capRatio = opts.cap ?? DEFAULT_CAP;
  const total = layers.reduce((n, l) => n + l.size, 0);
  const want = Math.round(target * total);
  const caps = layers.map((l) => Math.max(0, Math.min(Math.floor(capRatio * l.size), l.maxUnits ?? l.size)));
  const capacity = caps.reduce((a, b) => a + b, 0);
  if (want > capacity) {
    throw new UserError(
      `--sparsity ${target}: sensitivity allocation prunes no layer beyond ${(capRatio * 100).toFixed(0)}%, so at most ${((capacity / total) * 100).toFixed(1)}% is reachable; lower --sparsity or use --scope global`,
    );
  }
  const hulls = layers.map((l, i) => lowerHull(monotoneCurve(l.points, l.size > 0 ? caps[i] / l.size : 0)));
  const saves = unitSavings(layers, opts.costExponent ?? 0);
  const segments: { layer: number; order: number; units: number; cost: number; slope: number }[] = [];
  hulls.forEach((h, i) => {
    for (let s = 1; s < h.length; s++) {
      const units = (h[s].r - h[s - 1].r) * layers[i].size;
      if (units <= 0) continue;
      const slope = (h[s].f - h[s - 1].f) / (h[s].r - h[s - 1].r);
      // loss per unit, or per unit of cost saved: one factor per layer keeps each layer's hull order
      segments.push({ layer: i, order: s, units, cost: slope / layers[i].size / saves.weight[i], slope });
    }
  });
  segments.sort((a, b) => a.cost - b.cost || saves.tie[b.layer] - saves.tie[a.layer] || a.layer - b.layer || a.order - b.order);
  const amount = new Float64Array(layers.length);
  let left = want;
  for (const s of segments) {
    if (left <= 0) break;
    const take = Math.min(left, s.units);
    amount[s.layer] += take;
    left -= take;
  }
  // whole units: floors, then the largest remainders, never past a cap
  const pruned = layers.map((_, i) => Math.min(caps[i], Math.floor(amount[i] + 1e-9)));
  let missing = want - pruned.reduce((a, b) => a + b, 0);
  const byRemainder = layers.map((_, i) => i).sort((a, b) => amount[b] - Math.floor(amount[b] + 1e-9) - (amount[a] - Math.floor(amount[a] + 1e-9)) || a - b);
  while (missing > 0) {
    let moved = false;
    for (const i of byRemainder) {
      if (missing === 0) break;
      if (pruned[i] < caps[i]) {
        pruned[i]++;
        missing--;
        moved = true;
      }
    }
    if (!moved) break;
  }
  const ratios = pruned.map((k, i) => (layers[i].size ? k / layers[i].size : 0));
  const predictedIncrease = hulls.reduce((s, h, i) => s + interpolate(h, ratios[i]), 0);
  return { pruned, ratios, predictedIncrease };
}

/** Per layer: the divisor of its loss per unit (unitCost^e, 1 when e = 0) and the tie-break (unitCost). */
export function unitSavings(layers: readonly LayerCurve[], exponent: number): { weight: number[]; tie: number[] } {
  const known = layers.map((l) => l.unitCost ?? 0).filter((c) => c > 0);
  if (exponent === 0 || known.length === 0) return { weight: layers.map(() => 1), tie: layers.map(() => 0) };
  const floor = Math.min(...known);
  const tie = layers.map((l) => ((l.unitCost ?? 0) > 0 ? l.unitCost! : floor));
  // normalised by the smallest cost so the divisor stays >= 1 whatever the cost's unit
  return { weight: tie.map((c) => (c / floor) ** exponent), tie };
}

/**
 * A unit's predicted loss at a kept count, from its measured curve made monotone (linear between the
 * points, flat past the last): what the snap to fast widths and the latency allocation price a cut by.
 */
export function lossAtKept(points: LayerCurve['points'], size: number): (kept: number) => number {
  const pts = monotoneCurve(points, 1);
  return (kept) => interpolate(pts, 1 - kept / size);
}

function interpolate(pts: readonly Pt[], r: number): number {
  for (let i = 1; i < pts.length; i++) {
    if (r <= pts[i].r) return pts[i - 1].f + ((pts[i].f - pts[i - 1].f) * (r - pts[i - 1].r)) / (pts[i].r - pts[i - 1].r);
  }
  return pts[pts.length - 1].f;
}
