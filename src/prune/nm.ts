import type { ModelProto, NodeProto } from '../onnx/proto/onnx_pb.js';
import { GraphIndex, attrInt, nodeLabel } from '../onnx/graph.js';
import { ModelEditor } from '../onnx/edit.js';
import { numel, tensorDims, tensorToFloat32 } from '../onnx/tensor.js';
import type { PrunableWeight } from './prunable.js';

/** N:M semi-structured sparsity: in every group of M consecutive weights along the reduction axis, N are kept. */
export interface NMPattern {
  n: number;
  m: number;
}

/** `"2:4"` -> {n: 2, m: 4}; undefined for anything that is not an N:M pattern with 1 <= N < M. */
export function parseNM(method: string): NMPattern | undefined {
  const match = /^([1-9][0-9]*):([1-9][0-9]*)$/.exec(method);
  if (!match) return undefined;
  const n = Number(match[1]);
  const m = Number(match[2]);
  return n < m ? { n, m } : undefined;
}

/**
 * How a weight tensor's entries line up along the axis its consumer sums over (the input, or fan-in, axis).
 * The tensor holds `outer * inner` reduction rows of `length` entries each; entry j of row (o, i) sits at
 * `o * length * inner + j * inner + i`. One shape covers every layout we prune:
 *  - Conv [Cout, Cin/g, k...]: a row per output channel over Cin/g * prod(k) (outer = Cout, inner = 1)
 *  - Gemm transB=1 W[out, in], MatMul with the weight as left operand [..., M, K]: contiguous rows (inner = 1)
 *  - Gemm transB=0 / MatMul right operand W[..., in, out]: a row per column, strided by `out` (inner = out)
 *  - ConvTranspose [Cin, Cout/g, k...]: per group, along Cin/g for every (output channel, kernel position)
 */
export interface ReductionLayout {
  outer: number;
  length: number;
  inner: number;
}

function layoutForNode(node: NodeProto, name: string, dims: readonly number[]): ReductionLayout | string {
  const total = numel(dims);
  switch (node.opType) {
    case 'Conv':
      if (node.input[1] !== name) return `${node.opType} uses it as data, not as its weight`;
      return { outer: dims[0], length: total / dims[0], inner: 1 };
    case 'ConvTranspose': {
      if (node.input[1] !== name) return `${node.opType} uses it as data, not as its weight`;
      const groups = attrInt(node, 'group', 1);
      if (dims[0] % groups !== 0) return `ConvTranspose group ${groups} does not divide Cin ${dims[0]}`;
      return { outer: groups, length: dims[0] / groups, inner: total / dims[0] };
    }
    case 'Gemm':
      if (node.input[1] !== name || dims.length !== 2) return 'Gemm uses it other than as a 2-D B operand';
      return attrInt(node, 'transB', 0) ? { outer: dims[0], length: dims[1], inner: 1 } : { outer: 1, length: dims[0], inner: dims[1] };
    case 'MatMul': {
      if (dims.length < 2) return 'MatMul weight is 1-D';
      if (node.input[1] === name) {
        const [k, n] = dims.slice(-2);
        return { outer: total / (k * n), length: k, inner: n };
      }
      const k = dims[dims.length - 1];
      return { outer: total / k, length: k, inner: 1 };
    }
    default:
      return `${node.opType} is not a Conv, ConvTranspose, Gemm or MatMul`;
  }
}

const MAC_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

/**
 * The reduction layout of initializer `name` from the nodes that multiply with it; a reason string when
 * there is no such node or two of them sum over different axes (then no single N:M pattern serves both).
 */
export function reductionLayout(index: GraphIndex, name: string): ReductionLayout | string {
  const t = index.initializers.get(name);
  if (!t) return 'not in the model';
  const dims = tensorDims(t);
  const users = index.consumersOf(name).filter((n) => MAC_OPS.has(n.opType));
  if (users.length === 0) return 'no Conv, ConvTranspose, Gemm or MatMul uses it';
  let found: ReductionLayout | undefined;
  for (const node of users) {
    const l = layoutForNode(node, name, dims);
    if (typeof l === 'string') return `${nodeLabel(node)}: ${l}`;
    if (found && (found.outer !== l.outer || found.length !== l.length || found.inner !== l.inner)) {
      return `shared by nodes that sum over different axes (${nodeLabel(users[0])}, ${nodeLabel(node)})`;
    }
    found = l;
  }
  return found!;
}

/** One group of M along a reduction row is scratch-ranked; larger M sorts instead of repeated minimum search. */
const SELECT_LIMIT = 32;

/**
 * Keep-mask (1 = keep) with the N largest |w| of every full group of M consecutive entries along each
 * reduction row. Ties keep the earlier position, so the mask is deterministic and exactly N per group are
 * kept (fewer nonzeros only when the group already held zeros). NaN ranks as largest: it is never hidden.
 * The last `length % m` entries of each row form no full group and stay dense.
 */
export function nmMask(values: Float32Array, layout: ReductionLayout, n: number, m: number): Uint8Array {
  const { outer, length, inner } = layout;
  if (outer * length * inner !== values.length) throw new Error(`layout ${outer}x${length}x${inner} does not cover ${values.length} values`);
  const mask = new Uint8Array(values.length).fill(1);
  const drop = m - n;
  const score = new Float64Array(m);
  const order = m > SELECT_LIMIT ? Array.from({ length: m }, (_, j) => j) : [];
  const full = length - (length % m);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * length * inner + i;
      for (let g = 0; g < full; g += m) {
        const start = base + g * inner;
        for (let j = 0; j < m; j++) {
          const a = Math.abs(values[start + j * inner]);
          score[j] = Number.isNaN(a) ? Infinity : a;
        }
        if (m <= SELECT_LIMIT) {
          for (let d = 0; d < drop; d++) {
            // the smallest not yet dropped; `<=` picks the later of equals, so earlier ones are kept
            let best = -1;
            for (let j = 0; j < m; j++) if (score[j] >= 0 && (best < 0 || score[j] <= score[best])) best = j;
            score[best] = -1;
            mask[start + best * inner] = 0;
          }
        } else {
          for (let j = 0; j < m; j++) order[j] = j;
          order.sort((x, y) => score[x] - score[y] || y - x);
          for (let d = 0; d < drop; d++) mask[start + order[d] * inner] = 0;
        }
      }
    }
  }
  return mask;
}

export interface NMLayerReport {
  initializer: string;
  node: string;
  layout: ReductionLayout;
  /** entries in full groups (pruned to N of M) */
  grouped: number;
  /** entries left dense because the reduction length is not a multiple of M */
  tail: number;
}

export interface NMSkipped {
  initializer: string;
  node: string;
  reason: string;
}

export interface NMResult {
  model: ModelProto;
  /** weights that now follow the pattern, with where their dense tails are */
  layers: NMLayerReport[];
  /** prunable weights left dense because no single reduction axis exists for them */
  skipped: NMSkipped[];
  /** keep-masks by initializer name */
  masks: Map<string, Uint8Array>;
}

/** N:M magnitude pruning of `weights` in a copy of `model`; the input model is not modified. */
export function nmPrune(model: ModelProto, weights: readonly PrunableWeight[], n: number, m: number): NMResult {
  if (!(Number.isInteger(n) && Number.isInteger(m) && n >= 1 && n < m)) throw new Error(`invalid N:M pattern ${n}:${m}`);
  const ed = ModelEditor.copyOf(model);
  const index = new GraphIndex(ed.graph);
  const layers: NMLayerReport[] = [];
  const skipped: NMSkipped[] = [];
  const masks = new Map<string, Uint8Array>();
  for (const w of weights) {
    const layout = reductionLayout(index, w.initializer);
    if (typeof layout === 'string') {
      skipped.push({ initializer: w.initializer, node: w.node, reason: layout });
      continue;
    }
    const values = tensorToFloat32(index.initializers.get(w.initializer)!);
    const mask = nmMask(values, layout, n, m);
    for (let i = 0; i < values.length; i++) if (!mask[i]) values[i] = 0;
    ed.replaceInitializer(w.initializer, values);
    masks.set(w.initializer, mask);
    const tail = (layout.length % m) * layout.outer * layout.inner;
    layers.push({ initializer: w.initializer, node: w.node, layout, grouped: values.length - tail, tail });
  }
  return { model: ed.model, layers, skipped, masks };
}

export interface NMViolation {
  initializer: string;
  /** reduction row (o * inner + i) and the group's first position along it; -1 when the tensor is unusable */
  row: number;
  offset: number;
  /** nonzeros found in the group (more than N) */
  nonzero: number;
  message: string;
}

/**
 * Checks the N:M pattern as stored in `model` (read it back from the saved file): every full group of
 * M along each weight's reduction axis holds at most N nonzeros. Returns violations, at most `limit`.
 */
export function verifyNM(model: ModelProto, weights: readonly { initializer: string }[], n: number, m: number, limit = 100): NMViolation[] {
  const index = new GraphIndex(model.graph!);
  const violations: NMViolation[] = [];
  for (const w of weights) {
    const layout = reductionLayout(index, w.initializer);
    if (typeof layout === 'string') {
      violations.push({ initializer: w.initializer, row: -1, offset: -1, nonzero: 0, message: `${w.initializer}: cannot check the pattern: ${layout}` });
      if (violations.length >= limit) return violations;
      continue;
    }
    const values = tensorToFloat32(index.initializers.get(w.initializer)!);
    const { outer, length, inner } = layout;
    const full = length - (length % m);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * length * inner + i;
        for (let g = 0; g < full; g += m) {
          let nonzero = 0;
          for (let j = 0; j < m; j++) if (values[base + (g + j) * inner] !== 0) nonzero++;
          if (nonzero > n) {
            const row = o * inner + i;
            violations.push({ initializer: w.initializer, row, offset: g, nonzero, message: `${w.initializer}: row ${row}, group at ${g} has ${nonzero} nonzeros, more than ${n} of ${m}` });
            if (violations.length >= limit) return violations;
          }
        }
      }
    }
  }
  return violations;
}
