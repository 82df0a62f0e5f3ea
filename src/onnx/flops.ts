import type { ModelProto, NodeProto, TensorProto } from './proto/onnx_pb.js';
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

/** ops whose multiply-accumulates are counted (in `modelCost(...).nodes` order); the integer forms run the same MACs as their float ops */
export const MAC_OPS: ReadonlySet<string> = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Einsum', 'MatMulInteger', 'ConvInteger']);

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
    case 'ConvInteger':
      return numel(y) * numel(w.slice(1));
    case 'ConvTranspose': // weight [Cin, Cout/groups, k...]: every input element feeds Cout/groups * prod(kernel)
      return numel(x) * numel(w.slice(1));
    case 'Gemm': {
      const k = attrInt(node, 'transA', 0) ? x[0] : x[1];
      return numel(y) * k;
    }
    case 'MatMul':
    case 'MatMulInteger':
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
  const { stored, auxiliary } = quantizedWeights(index);
  for (const t of index.initializers.values()) {
    if (auxiliary.has(t.name) || (!FLOAT_TYPES.has(t.dataType) && !stored.has(t.name))) continue;
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
      const t = weightTensor(index, i);
      if (t && (FLOAT_TYPES.has(t.dataType) || stored.has(t.name))) p += numel(tensorDims(t));
    }
    nodes.push({ node: nodeLabel(n), opType: n.opType, macs: m, params: p });
  }
  return { params, nonzeroParams: nonzero, macs, uncounted, nodes };
}

/**
 * In a quantized (QDQ) model, weights are integer initializers read by DequantizeLinear (`stored`); their
 * scales and zero points, and those of the activations, are bookkeeping, not parameters (`auxiliary`).
 */
export function quantizedWeights(index: GraphIndex): { stored: Set<string>; auxiliary: Set<string> } {
  const stored = new Set<string>();
  const auxiliary = new Set<string>();
  for (const n of index.graph.node) {
    // dynamic quantization's weight scales multiply the activation scale DynamicQuantizeLinear measured
    if (n.opType === 'Mul' && n.input.some((i) => index.producer.get(i)?.opType === 'DynamicQuantizeLinear')) {
      for (const i of n.input) if (index.initializers.has(i)) auxiliary.add(i);
      continue;
    }
    if (n.opType === 'MatMulInteger' || n.opType === 'ConvInteger') {
      // dynamic quantization: the integer weight is read directly; zero points are bookkeeping
      if (index.initializers.has(n.input[1])) stored.add(n.input[1]);
      for (const i of n.input.slice(2)) if (i && index.initializers.has(i)) auxiliary.add(i);
      continue;
    }
    if (n.opType !== 'DequantizeLinear' && n.opType !== 'QuantizeLinear') continue;
    if (n.opType === 'DequantizeLinear' && index.initializers.has(n.input[0])) stored.add(n.input[0]);
    for (const i of n.input.slice(1)) if (i && index.initializers.has(i)) auxiliary.add(i);
  }
  return { stored, auxiliary };
}

/** The initializer behind a weight operand: itself, or the integer tensor a DequantizeLinear reads. */
export function weightTensor(index: GraphIndex, name: string): TensorProto | undefined {
  const t = index.initializers.get(name);
  if (t) return t;
  const p = index.producer.get(name);
  return p && p.opType === 'DequantizeLinear' ? index.initializers.get(p.input[0]) : undefined;
}
