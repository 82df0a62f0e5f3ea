import type { ModelProto, TensorProto } from '../onnx/proto/onnx_pb.js';
import { GraphIndex } from '../onnx/graph.js';
import { cloneModel } from '../onnx/model.js';
import { ModelEditor } from '../onnx/edit.js';
import { readFloat32 } from '../onnx/tensor.js';
import type { PrunableWeight } from './prunable.js';
import { kthSmallestAbsBits } from './select.js';

export type MagnitudeScope = 'global' | 'layer';

/**
 * Keep-mask (1 = keep) that zeroes exactly `k` of the smallest |w| over all `tensors` together. Ties at
 * the threshold are broken by position, so the count is exact even for quantised or repeated weights.
 * Works on the bit patterns of |w| (see kthSmallestAbsBits): no |w| copy, three linear passes.
 */
export function magnitudeMask(tensors: readonly Float32Array[], k: number): Uint8Array[] {
  const masks = tensors.map((t) => new Uint8Array(t.length).fill(1));
  if (k <= 0) return masks;
  const total = tensors.reduce((n, t) => n + t.length, 0);
  const threshold = kthSmallestAbsBits(tensors, Math.min(k, total) - 1);
  const views = tensors.map((t) => new Uint32Array(t.buffer, t.byteOffset, t.length));
  let pruned = 0;
  views.forEach((v, j) => {
    const m = masks[j];
    for (let i = 0; i < v.length; i++) {
      if ((v[i] & 0x7fffffff) < threshold) {
        m[i] = 0;
        pruned++;
      }
    }
  });
  for (let j = 0; j < views.length && pruned < k; j++) {
    const v = views[j];
    const m = masks[j];
    for (let i = 0; i < v.length && pruned < k; i++) {
      if (m[i] && (v[i] & 0x7fffffff) === threshold) {
        m[i] = 0;
        pruned++;
      }
    }
  }
  return masks;
}

/**
 * Global magnitude keep-masks where no tensor loses more than `maxLayerSparsity` of its entries (Torch-Pruning's
 * `max_pruning_ratio`, NNCF's per-layer limit): one global threshold, except that a tensor the threshold
 * would empty beyond the cap is pruned to exactly the cap (its smallest |w|) and the rest of `k` is spread
 * over the others by a new global threshold, until no tensor exceeds the cap. When every tensor is at the cap
 * fewer than `k` entries are pruned (the caller reports the sparsity reached).
 */
export function cappedMagnitudeMask(tensors: readonly Float32Array[], k: number, maxLayerSparsity: number): Uint8Array[] {
  if (maxLayerSparsity >= 1) return magnitudeMask(tensors, k);
  const masks: Uint8Array[] = new Array(tensors.length);
  const capOf = (t: Float32Array): number => Math.floor(maxLayerSparsity * t.length);
  let open = tensors.map((_, j) => j);
  let budget = k;
  for (;;) {
    const trial = magnitudeMask(open.map((j) => tensors[j]), budget);
    const over = open.filter((j, i) => trial[i].length - countOnes(trial[i]) > capOf(tensors[j]));
    if (over.length === 0) {
      open.forEach((j, i) => (masks[j] = trial[i]));
      return masks;
    }
    for (const j of over) {
      masks[j] = magnitudeMask([tensors[j]], capOf(tensors[j]))[0];
      budget -= capOf(tensors[j]);
    }
    const capped = new Set(over);
    open = open.filter((j) => !capped.has(j));
    if (open.length === 0 || budget <= 0) {
      for (const j of open) masks[j] = new Uint8Array(tensors[j].length).fill(1);
      return masks;
    }
  }
}

function countOnes(m: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < m.length; i++) n += m[i];
  return n;
}

export function applyMask(values: Float32Array, mask: Uint8Array): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = mask[i] ? values[i] : 0;
  return out;
}

function maskInPlace(values: Float32Array, mask: Uint8Array): Float32Array {
  for (let i = 0; i < values.length; i++) if (!mask[i]) values[i] = 0;
  return values;
}

export interface MagnitudeResult {
  model: ModelProto;
  /** keep-masks by initializer name */
  masks: Map<string, Uint8Array>;
}

/**
 * Unstructured magnitude pruning: a new model whose prunable weights have `sparsity` of their entries
 * set to real zeros, chosen over all layers together (`global`) or within each layer (`layer`). Under
 * `global`, no layer loses more than `maxLayerSparsity` of its weights (1 = no cap).
 * Memory: the weights are read in place where aligned, the copy leaves the weights out (they are
 * rewritten anyway), and each rewritten weight is adopted without another copy, so pruning ResNet-50
 * needs about one model's worth of memory beyond the dense model instead of five.
 */
export function magnitudePrune(model: ModelProto, weights: readonly PrunableWeight[], sparsity: number, scope: MagnitudeScope, maxLayerSparsity = 1): MagnitudeResult {
  const denseIndex = new GraphIndex(model.graph!);
  const denseTensors = weights.map((w) => denseIndex.initializers.get(w.initializer)!);
  const values = denseTensors.map((t) => readFloat32(t));
  let masks: Uint8Array[];
  if (scope === 'global') {
    const total = values.reduce((n, v) => n + v.length, 0);
    masks = cappedMagnitudeMask(values, Math.round(sparsity * total), maxLayerSparsity);
  } else {
    masks = values.map((v) => magnitudeMask([v], Math.round(sparsity * v.length))[0]);
  }
  const ed = new ModelEditor(cloneWithoutData(model, denseTensors));
  const byName = new Map<string, Uint8Array>();
  weights.forEach((w, j) => {
    // a weight read in place belongs to the dense model; a copy (unaligned bytes) is ours to zero in place
    const owned = values[j].buffer !== denseTensors[j].rawData.buffer;
    ed.adoptInitializer(w.initializer, owned ? maskInPlace(values[j], masks[j]) : applyMask(values[j], masks[j]));
    byName.set(w.initializer, masks[j]);
  });
  return { model: ed.model, masks: byName };
}

/**
 * A deep copy of `model` in which `tensors` keep their name, type and shape but no values (the caller
 * writes new ones). Their data is detached from the source only while it is serialised, synchronously,
 * and always put back.
 */
function cloneWithoutData(model: ModelProto, tensors: readonly TensorProto[]): ModelProto {
  const saved = tensors.map((t) => ({ raw: t.rawData, float: t.floatData, double: t.doubleData, int32: t.int32Data }));
  try {
    for (const t of tensors) {
      t.rawData = new Uint8Array(0);
      t.floatData = [];
      t.doubleData = [];
      t.int32Data = [];
    }
    return cloneModel(model);
  } finally {
    tensors.forEach((t, j) => {
      t.rawData = saved[j].raw;
      t.floatData = saved[j].float;
      t.doubleData = saved[j].double;
      t.int32Data = saved[j].int32;
    });
  }
}
