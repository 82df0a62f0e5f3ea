import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { GraphIndex } from '../onnx/graph.js';
import { tensorToFloat32 } from '../onnx/tensor.js';
import type { LayerSparsity } from '../ledger/types.js';
import type { PrunableWeight } from './prunable.js';

export interface SparsityReport {
  /** zeros / total over the prunable weights */
  overall: number;
  zeros: number;
  total: number;
  layers: LayerSparsity[];
}

/** Zeros counted in the model's own tensors: what the saved file really holds, not what was asked. */
export function countSparsity(model: ModelProto, weights: readonly PrunableWeight[]): SparsityReport {
  const index = new GraphIndex(model.graph!);
  const layers: LayerSparsity[] = [];
  let zeros = 0;
  let total = 0;
  for (const w of weights) {
    const t = index.initializers.get(w.initializer);
    if (!t) continue;
    const v = tensorToFloat32(t);
    let z = 0;
    for (let i = 0; i < v.length; i++) if (v[i] === 0) z++;
    layers.push({ name: w.initializer, node: w.node, total: v.length, zeros: z, sparsity: v.length ? z / v.length : 0 });
    zeros += z;
    total += v.length;
  }
  return { overall: total ? zeros / total : 0, zeros, total, layers };
}
