import picomatch from 'picomatch';
import type { ModelProto, NodeProto } from '../onnx/proto/onnx_pb.js';
import { GraphIndex, nodeLabel } from '../onnx/graph.js';
import { FLOAT_TYPES, tensorDims } from '../onnx/tensor.js';

/** A weight initializer that magnitude pruning may zero, with the node that consumes it. */
export interface PrunableWeight {
  initializer: string;
  node: string;
  opType: string;
  dims: number[];
}

export interface PrunableOptions {
  /** globs over node names and initializer names that must stay dense */
  exclude: readonly string[];
  keepFirstLayer: boolean;
  keepLastLayer: boolean;
}

/**
 * Which operand of a node is its weight matrix. Biases, normalisation parameters and embeddings
 * (Gather tables) are never weights here, so they stay dense without needing an exclude glob.
 */
function weightInput(node: NodeProto, index: GraphIndex): string | undefined {
  switch (node.opType) {
    case 'Conv':
    case 'ConvTranspose':
    case 'Gemm':
      return node.input[1];
    case 'MatMul': {
      // either side may be the constant; activations x activations (attention scores) has none
      const [a, b] = node.input;
      if (index.initializers.has(b)) return b;
      if (index.initializers.has(a)) return a;
      return undefined;
    }
    default:
      return undefined;
  }
}

export function prunableWeights(model: ModelProto, opts: PrunableOptions): PrunableWeight[] {
  const index = new GraphIndex(model.graph!);
  const excluded = opts.exclude.length > 0 ? picomatch(opts.exclude as string[]) : () => false;
  const found: PrunableWeight[] = [];
  const seen = new Set<string>();
  for (const node of index.order) {
    const name = weightInput(node, index);
    if (!name) continue;
    const t = index.initializers.get(name);
    if (!t || !FLOAT_TYPES.has(t.dataType) || tensorDims(t).length < 2) continue;
    // a weight shared by two nodes is one tensor: prune it once
    if (seen.has(name)) continue;
    seen.add(name);
    found.push({ initializer: name, node: nodeLabel(node), opType: node.opType, dims: tensorDims(t) });
  }
  const kept = found.filter((w, i) => {
    if (opts.keepFirstLayer && i === 0) return false;
    if (opts.keepLastLayer && i === found.length - 1) return false;
    return !excluded(w.initializer) && !excluded(w.node);
  });
  return kept;
}
