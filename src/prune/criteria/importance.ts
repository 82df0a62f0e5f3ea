import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import { GraphIndex } from '../../onnx/graph.js';
import { tensorDims, tensorToFloat32 } from '../../onnx/tensor.js';
import type { AxisUse, DependencyAnalysis } from '../structured/depgraph.js';
import type { Layout, Spaces } from '../structured/layout.js';

export const CRITERIA = ['l1', 'l2', 'bn-scale', 'activation'] as const;
export type Criterion = (typeof CRITERIA)[number];

/** per group root: one score per channel, higher = more important */
export type Importance = Map<number, Float64Array>;

/** |w| summed (p=1) or squared (p=2) per index of `axis`. */
export function normAlongAxis(values: Float32Array, dims: readonly number[], axis: number, p: 1 | 2): Float64Array {
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const n = dims[axis];
  const out = new Float64Array(n);
  for (let i = 0; i < values.length; i++) {
    const k = Math.floor(i / inner) % n;
    const v = values[i];
    out[k] += p === 1 ? Math.abs(v) : v * v;
  }
  return out;
}

/** Add per-element scores along an axis into per-channel scores of each group the layout covers. */
export function accumulate(scores: Importance, spaces: Spaces, layout: Layout, perElement: ArrayLike<number>): void {
  let pos = 0;
  for (const s of layout) {
    const root = spaces.root(s.space);
    let acc = scores.get(root);
    if (!acc) scores.set(root, (acc = new Float64Array(spaces.size(root))));
    for (let c = 0; c < s.len; c++) {
      for (let r = 0; r < s.repeat; r++) acc[s.start + c] += perElement[pos + c * s.repeat + r];
    }
    pos += s.len * s.repeat;
  }
}

function constants(model: ModelProto): (name: string) => { values: Float32Array; dims: number[] } {
  const index = new GraphIndex(model.graph!);
  const cache = new Map<string, { values: Float32Array; dims: number[] }>();
  return (name) => {
    let c = cache.get(name);
    if (!c) {
      const t = index.constant(name)!;
      cache.set(name, (c = { values: tensorToFloat32(t), dims: tensorDims(t) }));
    }
    return c;
  };
}

/** the weight matrices of a group (filters and fan-in), not its biases or normalisation vectors */
const isMatrixUse = (u: AxisUse, get: ReturnType<typeof constants>) => get(u.tensor).dims.length >= 2;

/**
 * Magnitude importance of every channel, aggregated over all coupled weight matrices of its group (the
 * producing filters and the consuming fan-in), as Torch-Pruning's group importance does.
 */
export function magnitudeImportance(model: ModelProto, analysis: DependencyAnalysis, p: 1 | 2): Importance {
  const get = constants(model);
  const scores: Importance = new Map();
  for (const u of analysis.uses) {
    if (!isMatrixUse(u, get)) continue;
    const { values, dims } = get(u.tensor);
    accumulate(scores, analysis.spaces, u.layout, normAlongAxis(values, dims, u.axis, p));
  }
  if (p === 2) for (const v of scores.values()) for (let i = 0; i < v.length; i++) v[i] = Math.sqrt(v[i]);
  return scores;
}

/**
 * |gamma| of the BatchNormalization layers in each group (network slimming). Groups without a
 * BatchNorm get no entry; the caller falls back to another criterion for them and says so.
 */
export function bnScaleImportance(model: ModelProto, analysis: DependencyAnalysis): Importance {
  const get = constants(model);
  const scores: Importance = new Map();
  const nodes = model.graph!.node;
  for (const u of analysis.uses) {
    const n = nodes[u.node];
    if (n.opType !== 'BatchNormalization' || u.tensor !== resolveAlias(model, n.input[1])) continue;
    accumulate(scores, analysis.spaces, u.layout, Array.from(get(u.tensor).values, Math.abs));
  }
  return scores;
}

function resolveAlias(model: ModelProto, name: string): string {
  const byOutput = new Map(model.graph!.node.map((n) => [n.output[0], n]));
  let n = name;
  for (let hop = 0; hop < 8; hop++) {
    const p = byOutput.get(n);
    if (!p || p.opType !== 'Identity') return n;
    n = p.input[0];
  }
  return n;
}

/**
 * Data-driven importance: for every consumer of a channel, mean |activation| entering it times the L2
 * norm of its fan-in weights — the expected size of the channel's contribution on calibration data.
 * `meanAbs` maps an activation tensor to its per-element (along the channel axis) mean |x|.
 */
export function activationImportance(model: ModelProto, analysis: DependencyAnalysis, meanAbs: ReadonlyMap<string, Float64Array>): Importance {
  const get = constants(model);
  const scores: Importance = new Map();
  for (const u of analysis.uses) {
    if (u.role !== 'fanin' || !u.activation) continue;
    const act = meanAbs.get(u.activation);
    if (!act) continue;
    const { values, dims } = get(u.tensor);
    const w = normAlongAxis(values, dims, u.axis, 2);
    const per = new Float64Array(w.length);
    for (let i = 0; i < w.length; i++) per[i] = Math.sqrt(w[i]) * (act[i] ?? 0);
    accumulate(scores, analysis.spaces, u.layout, per);
  }
  return scores;
}
