import type { SensitivityLayer, SensitivityPoint } from './types.js';
import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import { ModelEditor } from '../../onnx/edit.js';
import { tensorToFloat32 } from '../../onnx/tensor.js';
import { applyMask, magnitudeMask } from '../magnitude.js';
import type { PrunableWeight } from '../prunable.js';
import { structuredGroups, structuredPrune, type StructuredOptions } from '../structured/structuredPrune.js';
import type { CalibScorer } from './calibScorer.js';

export const DEFAULT_RATIOS: readonly number[] = [0.25, 0.5, 0.75, 0.9];

/** Something pruned alone to measure its sensitivity: one weight tensor, or one dependency group. */
export interface SensitivityUnit {
  name: string;
  node?: string;
  /** units the global target counts */
  size: number;
  /** most units it may lose (a group keeps one channel) */
  maxUnits: number;
  /** units `pruneAlone(ratio)` removes */
  unitsAt(ratio: number): number;
  /** the model with only this unit pruned to `ratio`; valid until the next call */
  pruneAlone(ratio: number): Promise<ModelProto>;
}

/**
 * Unstructured units: each prunable weight tensor. They share one working copy of the model: each call
 * puts the previous tensor back and magnitude-prunes the requested one, so no point clones the model.
 */
export function weightUnits(dense: ModelProto, weights: readonly PrunableWeight[]): SensitivityUnit[] {
  const work = ModelEditor.copyOf(dense);
  let touched: { name: string; values: Float32Array } | undefined;
  const restore = () => {
    if (touched) work.replaceInitializer(touched.name, touched.values);
    touched = undefined;
  };
  return weights.map((w) => {
    const size = w.dims.reduce((a, b) => a * b, 1);
    return {
      name: w.initializer,
      node: w.node,
      size,
      maxUnits: size,
      unitsAt: (ratio) => Math.round(ratio * size),
      pruneAlone: async (ratio) => {
        restore();
        const values = tensorToFloat32(work.initializer(w.initializer)!);
        touched = { name: w.initializer, values };
        work.replaceInitializer(w.initializer, applyMask(values, magnitudeMask([values], Math.round(ratio * size))[0]));
        return work.model;
      },
    };
  });
}

/** Structured units: each prunable dependency group, pruned alone through the structured pruner's override. */
export function groupUnits(dense: ModelProto, opts: Omit<StructuredOptions, 'sparsity' | 'scope' | 'keptUnits'>): SensitivityUnit[] {
  const { groups } = structuredGroups(dense, opts.protectedTensors);
  return groups
    .filter((g) => !g.skip && g.size > 1)
    .map((g) => ({
      name: g.name,
      size: g.size,
      maxUnits: g.size - g.block,
      unitsAt: (ratio) => g.size - keptBlocks(g.size / g.block, ratio) * g.block,
      pruneAlone: async (ratio) => {
        const keep = keptBlocks(g.size / g.block, ratio);
        const r = await structuredPrune(dense, { ...opts, sparsity: 0, scope: 'global', keptUnits: new Map([[g.root, keep]]) });
        return r.model;
      },
    }));
}

/** Blocks (channels, or heads) a group of `blocks` keeps when pruned alone to `ratio`; at least one. */
function keptBlocks(blocks: number, ratio: number): number {
  return Math.max(1, Math.round(blocks * (1 - ratio)));
}

/** A time limit on the curves: `scope: auto` may spend this long measuring, a scope the user asked for is not limited. */
/** How much work the curves may take: MACs of the calibration passes they would run (scope auto's bound). */
export interface AnalysisLimit {
  macs: number;
  /** MACs of one score: a pass of the dense model over the scored calibration samples */
  scoreMacs: number;
}

/** The curves would take more work than their AnalysisLimit; thrown before any unit is measured. */
export class AnalysisOverBudget extends Error {
  constructor(readonly projectedMacs: number, readonly limitMacs: number, readonly points: number, readonly units: number) {
    super(`sensitivity curves projected at ${(projectedMacs / 1e9).toFixed(0)} GMAC (${units} units, ${points} curve points) against a ${(limitMacs / 1e9).toFixed(0)} GMAC limit`);
  }
}

/**
 * Each unit pruned alone at every ratio and scored on the calibration set: the sensitivity curves. With
 * `macsOf` (e.g. a model's MACs) each curve also gets what one pruned unit saves, measured at the largest
 * ratio: a structured group's MACs fall linearly with its channel count (its producer's outputs and its
 * consumers' inputs), so one point gives the slope.
 */
export async function sensitivityCurves(
  units: readonly SensitivityUnit[],
  scorer: CalibScorer,
  ratios: readonly number[] = DEFAULT_RATIOS,
  onLayer?: (done: number, total: number) => void,
  macsOf?: (model: ModelProto) => number,
  limit?: AnalysisLimit,
): Promise<Omit<SensitivityLayer, 'allocated'>[]> {
  const out: Omit<SensitivityLayer, 'allocated'>[] = [];
  // decided from the curve points before any is measured, never from how fast the first ones ran
  const points = units.length * ratios.length;
  if (limit && points * limit.scoreMacs > limit.macs) throw new AnalysisOverBudget(points * limit.scoreMacs, limit.macs, points, units.length);
  const denseMacs = macsOf && units.length > 0 ? macsOf(await units[0].pruneAlone(0)) : 0;
  const last = Math.max(...ratios);
  for (const u of units) {
    const t0 = performance.now();
    const points: SensitivityPoint[] = [{ ratio: 0, calib_nll: scorer.dense.nll, calib_accuracy: scorer.dense.accuracy }];
    let perUnit: number | undefined;
    for (const ratio of ratios) {
      const model = await u.pruneAlone(ratio);
      if (macsOf && ratio === last && u.unitsAt(ratio) > 0) perUnit = Math.max(0, denseMacs - macsOf(model)) / u.unitsAt(ratio);
      const s = await scorer.score(model);
      points.push({ ratio, calib_nll: s.nll, calib_accuracy: s.accuracy });
    }
    out.push({ name: u.name, ...(u.node ? { node: u.node } : {}), size: u.size, points, ...(perUnit !== undefined ? { macs_per_unit: perUnit } : {}), seconds: (performance.now() - t0) / 1000 });
    onLayer?.(out.length, units.length);
  }
  // the shared working copy must end dense again (weightUnits restores on the next call)
  if (units.length > 0) await units[0].pruneAlone(0);
  return out;
}
