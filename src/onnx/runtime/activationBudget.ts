import { GraphIndex } from '../graph.js';
import type { ModelProto } from '../proto/onnx_pb.js';
import { inferShapes } from '../shapes.js';
import { numel } from '../tensor.js';

/**
 * Bytes of activations one batch may hold. onnxruntime's arena keeps the high-water mark of a run's
 * live intermediate tensors, measured at 4-7.3x the largest activation per sample (ViT-B/16 at batch
 * 55: 970 MB, 7.3x its 2.4 MB MLP hidden; VGG-16 at batch 10: 3.8x; ResNet-50 at batch 32: 4x), so the
 * batch is cut so ACTIVATION_HIGH_WATER of the largest fit in this.
 */
export const ACTIVATION_BUDGET_BYTES = 384 * 2 ** 20;
export const ACTIVATION_HIGH_WATER = 8;

/** The largest float activation of one sample, in bytes (shapes at batch 1), or undefined when unknown. */
const largestCache = new WeakMap<ModelProto, number | null>();
export function largestActivationBytes(model: ModelProto): number | undefined {
  const hit = largestCache.get(model);
  if (hit !== undefined) return hit ?? undefined;
  let largest = 0;
  try {
    const index = new GraphIndex(model.graph!);
    const { shapes } = inferShapes(index, 1);
    for (const n of index.order) for (const o of n.output) {
      const s = shapes.get(o);
      if (s) largest = Math.max(largest, numel(s) * 4);
    }
  } catch {
    largest = 0;
  }
  largestCache.set(model, largest > 0 ? largest : null);
  return largest > 0 ? largest : undefined;
}

/** `want` samples per run, or fewer when ACTIVATION_HIGH_WATER of the model's largest activations per sample would exceed `budget`. */
export function boundedBatch(model: ModelProto, want: number, budget = ACTIVATION_BUDGET_BYTES): number {
  const per = largestActivationBytes(model);
  if (!per) return want;
  return Math.max(1, Math.min(want, Math.floor(budget / (ACTIVATION_HIGH_WATER * per))));
}
