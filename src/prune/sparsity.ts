import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { GraphIndex } from '../onnx/graph.js';
import { numel, tensorToFloat32 } from '../onnx/tensor.js';
import type { PrunableWeight } from './prunable.js';

export interface LayerSparsity {
  /** initializer name */
  name: string;
  /** node that consumes it */
  node: string;
  total: number;
  zeros: number;
  sparsity: number;
}

export interface SparsityReport {
  /** 1 - nonzero / dense total over the prunable weights */
  overall: number;
  zeros: number;
  total: number;
  layers: LayerSparsity[];
}

/**
 * Sparsity counted in the model's own tensors, against the dense model's sizes: a weight is "gone" when
 * it is a stored zero (unstructured, N:M) or no longer stored at all (structured surgery made the tensor
 * smaller, or removed it). So one number means the same for every method: what the file really holds.
 */
export function countSparsity(model: ModelProto, denseWeights: readonly PrunableWeight[]): SparsityReport {
  const index = new GraphIndex(model.graph!);
  const layers: LayerSparsity[] = [];
  let zeros = 0;
  let total = 0;
  for (const w of denseWeights) {
    const denseSize = numel(w.dims);
    const t = index.initializers.get(w.initializer);
    let nonzero = 0;
    if (t) {
      const v = tensorToFloat32(t);
      for (let i = 0; i < v.length; i++) if (v[i] !== 0) nonzero++;
    }
    const z = denseSize - nonzero;
    layers.push({ name: w.initializer, node: w.node, total: denseSize, zeros: z, sparsity: denseSize ? z / denseSize : 0 });
    zeros += z;
    total += denseSize;
  }
  return { overall: total ? zeros / total : 0, zeros, total, layers };
}
