import { ModelEditor } from '../onnx/edit.js';
import { attrFloat, GraphIndex } from '../onnx/graph.js';
import type { ModelProto, NodeProto, TensorProto } from '../onnx/proto/onnx_pb.js';
import { DataType, numel, tensorDims, tensorToFloat32 } from '../onnx/tensor.js';

/**
 * Fold every inference-mode BatchNormalization that directly follows a Conv into the Conv's weight and
 * bias: y = γ (conv(x) - μ) / sqrt(σ² + ε) + β is conv(x) with W scaled per output channel and a new bias.
 * The quantizer needs this done first: a QuantizeLinear between Conv and BatchNormalization would stop
 * onnxruntime from fusing either, and the weight that gets quantized must be the one the kernel runs.
 * Returns a new model; the input is not changed. Exact up to float rounding.
 */
export function foldBatchNorms(model: ModelProto): { model: ModelProto; folded: string[] } {
  const ed = ModelEditor.copyOf(model);
  const index = new GraphIndex(ed.graph);
  const folded: string[] = [];
  const stale: string[] = [];
  for (const bn of index.order) {
    if (bn.opType !== 'BatchNormalization' || bn.output.filter((o) => o).length !== 1) continue;
    const conv = index.producer.get(bn.input[0]);
    if (!conv || conv.opType !== 'Conv' || stale.includes(conv.output[0])) continue;
    if (index.consumersOf(conv.output[0]).length !== 1 || index.graphOutputs.has(conv.output[0])) continue;
    const w = index.initializers.get(conv.input[1]);
    const bias = conv.input[2] ? index.initializers.get(conv.input[2]) : undefined;
    const consts = bn.input.slice(1, 5).map((n) => constantThroughIdentity(index, n));
    if (!w || w.dataType !== DataType.FLOAT || (conv.input[2] && !bias) || consts.some((c) => !c)) continue;
    // a weight or bias another node also reads cannot be rewritten for this conv alone
    if (index.consumersOf(w.name).length !== 1 || (bias && index.consumersOf(bias.name).length !== 1)) continue;
    const [gamma, beta, mean, variance] = consts.map((c) => tensorToFloat32(c!));
    const eps = attrFloat(bn, 'epsilon', 1e-5);
    const dims = tensorDims(w);
    const channels = dims[0];
    if ([gamma, beta, mean, variance].some((a) => a.length !== channels)) continue;
    const weights = tensorToFloat32(w);
    const per = numel(dims) / channels;
    const b = bias ? tensorToFloat32(bias) : new Float32Array(channels);
    const newBias = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      const k = gamma[c] / Math.sqrt(variance[c] + eps);
      for (let i = 0; i < per; i++) weights[c * per + i] *= k;
      newBias[c] = (b[c] - mean[c]) * k + beta[c];
    }
    ed.adoptInitializer(w.name, weights);
    if (bias) ed.replaceInitializer(bias.name, newBias);
    else ed.setInput(conv, 2, ed.addFloatInitializer(`${conv.name || conv.output[0]}_folded_bias`, [channels], newBias));
    // the conv now writes what the BatchNormalization wrote, so every reader is unchanged
    stale.push(conv.output[0]);
    ed.removeNode(bn);
    ed.setOutput(conv, 0, bn.output[0]);
    folded.push(bn.name || bn.output[0]);
  }
  if (folded.length === 0) return { model: ed.model, folded };
  // the convs' old outputs no longer exist; BatchNormalization's parameters (and the Identity or
  // Constant nodes exporters feed them through) are read by nothing any more
  ed.dropValueInfo(stale);
  ed.dropUnread(new Set(['Identity', 'Constant']), { initializers: true });
  return { model: ed.model, folded };
}

/** The constant behind a tensor, looking through Identity nodes (exporters alias equal parameters that way). */
function constantThroughIdentity(index: GraphIndex, tensor: string): TensorProto | undefined {
  let name = tensor;
  for (let hops = 0; hops < 16; hops++) {
    const c = index.constant(name);
    if (c) return c;
    const p: NodeProto | undefined = index.producer.get(name);
    if (!p || p.opType !== 'Identity') return undefined;
    name = p.input[0];
  }
  return undefined;
}
