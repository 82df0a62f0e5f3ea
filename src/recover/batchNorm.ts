import type { Dataset } from '../data/dataset.js';
import { GraphIndex, nodeLabel } from '../onnx/graph.js';
import { cloneModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { setTensorFloat32, tensorToFloat32 } from '../onnx/tensor.js';
import { captureActivations, sessionFromModel, withExtraOutputs } from './session.js';

export interface BatchNormRestat {
  model: ModelProto;
  /** BatchNormalization nodes whose running statistics were replaced */
  nodes: string[];
}

/**
 * Re-estimate every BatchNormalization's running mean and variance from its input on the
 * calibration set, as the pruned model produces it. Pruning shifts the statistics BN normalises
 * with; the learned scale and shift stay. Nodes are done in graph order, each measured after the
 * ones before it were updated, since an earlier BN changes what a later one sees.
 */
export async function reestimateBatchNorm(pruned: ModelProto, calib: Dataset, threads = 0): Promise<BatchNormRestat> {
  const model = cloneModel(pruned);
  const index = new GraphIndex(model.graph!);
  const nodes: string[] = [];
  for (const node of index.order) {
    if (node.opType !== 'BatchNormalization' || node.output.length > 1) continue;
    const mean = index.initializers.get(node.input[3]);
    const variance = index.initializers.get(node.input[4]);
    // statistics shared with another node would change that node too
    if (!mean || !variance || index.consumersOf(mean.name).length !== 1 || index.consumersOf(variance.name).length !== 1) continue;
    const session = await sessionFromModel(withExtraOutputs(model, [node.input[0]]), threads);
    let act;
    try {
      act = (await captureActivations(session, calib, [node.input[0]])).get(node.input[0])!;
    } finally {
      await session.release();
    }
    const [n, c] = act.dims;
    const spatial = act.data.length / (n * c);
    const m = new Float64Array(c);
    const sq = new Float64Array(c);
    for (let s = 0; s < n; s++) {
      for (let ch = 0; ch < c; ch++) {
        const base = (s * c + ch) * spatial;
        let a = 0;
        let b = 0;
        for (let k = 0; k < spatial; k++) {
          const v = act.data[base + k];
          a += v;
          b += v * v;
        }
        m[ch] += a;
        sq[ch] += b;
      }
    }
    const count = n * spatial;
    const newMean = new Float32Array(c);
    const newVar = new Float32Array(c);
    for (let ch = 0; ch < c; ch++) {
      newMean[ch] = m[ch] / count;
      newVar[ch] = Math.max(0, sq[ch] / count - (m[ch] / count) ** 2);
    }
    // the old values stay for channels the calibration set never reaches (all-zero, e.g. dead ReLU)
    const oldVar = tensorToFloat32(variance);
    for (let ch = 0; ch < c; ch++) if (!(newVar[ch] > 0)) newVar[ch] = oldVar[ch];
    setTensorFloat32(mean, newMean);
    setTensorFloat32(variance, newVar);
    nodes.push(nodeLabel(node));
  }
  return { model, nodes };
}
