import type { ModelProto, NodeProto } from './proto/onnx_pb.js';
import { einsumMacs, parseEinsum } from './einsum.js';
import { GraphIndex, attrInt, attrString, nodeLabel } from './graph.js';
import { inferShapes } from './shapes.js';
import { FLOAT_TYPES, numel, tensorDims, tensorToFloat32 } from './tensor.js';

export interface NodeCost {
  node: string;
  opType: string;
  /** multiply-accumulates per sample; null when a shape could not be inferred */
  macs: number | null;
  params: number;
}

export interface ModelCost {
  /** elements of every floating-point initializer */
  params: number;
  nonzeroParams: number;
  /** MACs per sample over Conv, ConvTranspose, Gemm, MatMul and Einsum */
  macs: number;
  /** nodes whose MACs could not be counted (unknown shapes); their cost is missing from `macs` */
  uncounted: string[];
  nodes: NodeCost[];
}

/** the ops whose multiply-accumulates are counted, in `modelCost(...).nodes` order of appearance */
export const MAC_OPS: ReadonlySet<string> = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Einsum']);

export function nodeMacs(node: NodeProto, shapes: Map<string, number[]>): number | null {
  if (node.opType === 'Einsum') {
    const ins = node.input.map((n) => shapes.get(n));
    if (ins.some((i) => !i)) return null;
    try {
      return einsumMacs(parseEinsum(attrString(node, 'equation', ''), ins.map((i) => i!.length)), ins as number[][]) ?? null;
    } catch {
      return null;
    }
  }
  const x = shapes.get(node.input[0]);
  const w = shapes.get(node.input[1]);
  const y = shapes.get(node.output[0]);
  if (!x || !w || !y) return null;
  switch (node.opType) {
    case 'Conv': // every output element: Cin/groups * prod(kernel) MACs
      return numel(y) * numel(w.slice(1));
    case 'ConvTranspose': // weight [Cin, Cout/groups, k...]: every input element feeds Cout/groups * prod(kernel)
      return numel(x) * numel(w.slice(1));
    case 'Gemm': {
      const k = attrInt(node, 'transA', 0) ? x[0] : x[1];
      return numel(y) * k;
    }
    case 'MatMul':
      return numel(y) * x[x.length - 1];
    default:
      return null;
  }
}

/** Parameter and MAC counts at batch 1, from the graph's own shapes (no estimates from file size). */
export function modelCost(model: ModelProto): ModelCost {
  const index = new GraphIndex(model.graph!);
  const { shapes } = inferShapes(index, 1);
  let params = 0;
  let nonzero = 0;
  for (const t of index.initializers.values()) {
    if (!FLOAT_TYPES.has(t.dataType)) continue;
    const values = tensorToFloat32(t);
    params += values.length;
    for (let i = 0; i < values.length; i++) if (values[i] !== 0) nonzero++;
  }
  const nodes: NodeCost[] = [];
  const uncounted: string[] = [];
  let macs = 0;
  for (const n of index.order) {
    if (!MAC_OPS.has(n.opType)) continue;
    const m = nodeMacs(n, shapes);
    if (m === null) uncounted.push(nodeLabel(n));
    else macs += m;
    let p = 0;
    for (const i of n.input.slice(1)) {
      const t = index.initializers.get(i);
      if (t && FLOAT_TYPES.has(t.dataType)) p += numel(tensorDims(t));
    }
    nodes.push({ node: nodeLabel(n), opType: n.opType, macs: m, params: p });
  }
  return { params, nonzeroParams: nonzero, macs, uncounted, nodes };
}
