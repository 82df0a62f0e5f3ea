import type { Dataset } from '../data/dataset.js';
import { GraphIndex, nodeLabel } from '../onnx/graph.js';
import { ModelEditor } from '../onnx/edit.js';
import type { ModelProto, NodeProto, TensorProto } from '../onnx/proto/onnx_pb.js';
import { tensorToFloat32 } from '../onnx/tensor.js';
import { activationBytesPerSample, macsBefore, nodeMacsOf } from './bounds.js';
import type { WorkMeter } from './work.js';
import { ACTIVATION_BUDGET_BYTES, ACTIVATION_HIGH_WATER, boundedBatch, largestActivationBytes } from '../onnx/runtime/activationBudget.js';
import { sessionFromModel, streamActivations } from '../onnx/runtime/session.js';
import { graphUpTo } from '../onnx/subgraph.js';
import type { BatchNormBound } from './refusals.js';

export interface BatchNormRestat {
  model: ModelProto;
  /** BatchNormalization nodes whose running statistics were replaced */
  nodes: string[];
  /** how the work allowance changed it: every node in one pass, or nothing done */
  bound?: BatchNormBound;
}

export interface BatchNormBounds {
  /** recovery's work allowance, charged with the passes' MACs before they run */
  work?: WorkMeter;
}

interface Target {
  node: NodeProto;
  mean: TensorProto;
  variance: TensorProto;
}

/**
 * Re-estimate every BatchNormalization's running mean and variance from its input on the
 * calibration set, as the pruned model produces it. Pruning shifts the statistics BN normalises
 * with; the learned scale and shift stay. Nodes are done in graph order, each measured after the
 * ones before it were updated, since an earlier BN changes what a later one sees: one capture per
 * node, each running only the graph before it. When that sequence would not fit the work allowance
 * (DenseNet-121: 120 nodes), all nodes are measured in one pass instead (each sees the earlier ones'
 * old statistics), and when not even one pass fits, nothing is done; `bound` says which.
 */
export async function reestimateBatchNorm(pruned: ModelProto, calib: Dataset, threads = 0, bounds: BatchNormBounds = {}): Promise<BatchNormRestat> {
  const ed = ModelEditor.copyOf(pruned);
  const model = ed.model;
  const index = new GraphIndex(model.graph!);
  const targets: Target[] = [];
  for (const node of index.order) {
    if (node.opType !== 'BatchNormalization' || node.output.length > 1) continue;
    const mean = index.initializers.get(node.input[3]);
    const variance = index.initializers.get(node.input[4]);
    // statistics shared with another node would change that node too
    if (!mean || !variance || index.consumersOf(mean.name).length !== 1 || index.consumersOf(variance.name).length !== 1) continue;
    targets.push({ node, mean, variance });
  }
  if (targets.length === 0) return { model, nodes: [] };
  const left = bounds.work?.left ?? Infinity;
  const macs = nodeMacsOf(model);
  const full = [...macs.values()].reduce((a, b) => a + b, 0);
  let sequential = 0;
  for (const t of targets) sequential += macsBefore(model, t.node.input[0], macs) * calib.count;
  const pass = full * calib.count;
  const nodes: string[] = [];
  if (sequential <= left) {
    bounds.work?.charge(sequential);
    const batch = boundedBatch(model, 128);
    for (const t of targets) {
      const stats = await gatherStats(model, [t], calib, threads, batch);
      apply(ed, t, stats[0]);
      nodes.push(nodeLabel(t.node));
    }
    return { model, nodes };
  }
  if (pass > left) return { model, nodes: [], bound: { kind: 'work', passMacs: pass, leftMacs: left } };
  bounds.work?.charge(pass);
  // every node's input fetched at once: the batch must hold them all besides the model's own activations
  const fetched = activationBytesPerSample(model, targets.map((t) => t.node.input[0]));
  const per = fetched + ACTIVATION_HIGH_WATER * (largestActivationBytes(model) ?? 0);
  const batch = per > 0 ? Math.max(1, Math.min(128, Math.floor(ACTIVATION_BUDGET_BYTES / per))) : 128;
  const stats = await gatherStats(model, targets, calib, threads, batch);
  targets.forEach((t, k) => {
    apply(ed, t, stats[k]);
    nodes.push(nodeLabel(t.node));
  });
  return {
    model,
    nodes,
    bound: { kind: 'one-pass', nodes: targets.length, sequentialMacs: sequential, leftMacs: left },
  };
}

interface Stats {
  sum: Float64Array;
  sq: Float64Array;
  count: number;
}

/** Per-channel sums and sums of squares of each target's input, streamed batch by batch. */
async function gatherStats(model: ModelProto, targets: readonly Target[], calib: Dataset, threads: number, batch: number): Promise<Stats[]> {
  const names = [...new Set(targets.map((t) => t.node.input[0]))];
  const session = await sessionFromModel(graphUpTo(model, names), threads, { lean: true });
  const byName = new Map<string, Stats>();
  try {
    await streamActivations([{ session, fetch: names }], calib, batch, ([acts]) => {
      for (const name of names) {
        const act = acts.get(name)!;
        const [n, c] = act.dims;
        const spatial = act.data.length / (n * c);
        const s = byName.get(name) ?? { sum: new Float64Array(c), sq: new Float64Array(c), count: 0 };
        byName.set(name, s);
        for (let i = 0; i < n; i++) {
          for (let ch = 0; ch < c; ch++) {
            const base = (i * c + ch) * spatial;
            let a = 0;
            let b = 0;
            for (let k = 0; k < spatial; k++) {
              const v = act.data[base + k];
              a += v;
              b += v * v;
            }
            s.sum[ch] += a;
            s.sq[ch] += b;
          }
        }
        s.count += n * spatial;
      }
    });
  } finally {
    await session.release();
  }
  return targets.map((t) => byName.get(t.node.input[0])!);
}

function apply(ed: ModelEditor, t: Target, s: Stats): void {
  const c = s.sum.length;
  const newMean = new Float32Array(c);
  const newVar = new Float32Array(c);
  for (let ch = 0; ch < c; ch++) {
    newMean[ch] = s.sum[ch] / s.count;
    newVar[ch] = Math.max(0, s.sq[ch] / s.count - (s.sum[ch] / s.count) ** 2);
  }
  // the old values stay for channels the calibration set never reaches (all-zero, e.g. dead ReLU)
  const oldVar = tensorToFloat32(t.variance);
  for (let ch = 0; ch < c; ch++) if (!(newVar[ch] > 0)) newVar[ch] = oldVar[ch];
  ed.replaceInitializer(t.mean.name, newMean);
  ed.replaceInitializer(t.variance.name, newVar);
}
