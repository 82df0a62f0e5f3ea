import type { SensitivityLayer, SensitivityPoint } from '../../ledger/types.js';
import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import { GraphIndex } from '../../onnx/graph.js';
import { cloneModel } from '../../onnx/model.js';
import { setTensorFloat32, tensorToFloat32 } from '../../onnx/tensor.js';
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
  /** the model with only this unit pruned to `ratio`; valid until the next call */
  pruneAlone(ratio: number): Promise<ModelProto>;
}

/**
 * Unstructured units: each prunable weight tensor. They share one working copy of the model: each call
 * puts the previous tensor back and magnitude-prunes the requested one, so no point clones the model.
 */
export function weightUnits(dense: ModelProto, weights: readonly PrunableWeight[]): SensitivityUnit[] {
  const work = cloneModel(dense);
  const index = new GraphIndex(work.graph!);
  let touched: { name: string; values: Float32Array } | undefined;
  const restore = () => {
    if (touched) setTensorFloat32(index.initializers.get(touched.name)!, touched.values);
    touched = undefined;
  };
  return weights.map((w) => {
    const size = w.dims.reduce((a, b) => a * b, 1);
    return {
      name: w.initializer,
      node: w.node,
      size,
      maxUnits: size,
      pruneAlone: async (ratio) => {
        restore();
        const t = index.initializers.get(w.initializer)!;
        const values = tensorToFloat32(t);
        touched = { name: w.initializer, values };
        setTensorFloat32(t, applyMask(values, magnitudeMask([values], Math.round(ratio * size))[0]));
        return work;
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
      pruneAlone: async (ratio) => {
        const units = g.size / g.block;
        const keep = Math.max(1, Math.round(units * (1 - ratio)));
        const r = await structuredPrune(dense, { ...opts, sparsity: 0, scope: 'global', keptUnits: new Map([[g.root, keep]]) });
        return r.model;
      },
    }));
}

/** Each unit pruned alone at every ratio and scored on the calibration set: the sensitivity curves. */
export async function sensitivityCurves(
  units: readonly SensitivityUnit[],
  scorer: CalibScorer,
  ratios: readonly number[] = DEFAULT_RATIOS,
  onLayer?: (done: number, total: number) => void,
): Promise<Omit<SensitivityLayer, 'allocated'>[]> {
  const out: Omit<SensitivityLayer, 'allocated'>[] = [];
  for (const u of units) {
    const t0 = performance.now();
    const points: SensitivityPoint[] = [{ ratio: 0, calib_nll: scorer.dense.nll, calib_accuracy: scorer.dense.accuracy }];
    for (const ratio of ratios) {
      const s = await scorer.score(await u.pruneAlone(ratio));
      points.push({ ratio, calib_nll: s.nll, calib_accuracy: s.accuracy });
    }
    out.push({ name: u.name, ...(u.node ? { node: u.node } : {}), size: u.size, points, seconds: (performance.now() - t0) / 1000 });
    onLayer?.(out.length, units.length);
  }
  // the shared working copy must end dense again (weightUnits restores on the next call)
  if (units.length > 0) await units[0].pruneAlone(0);
  return out;
}
