import { GraphIndex, attrFloat } from '../onnx/graph.js';
import { cloneModel } from '../onnx/model.js';
import type { ModelProto, NodeProto, TensorProto } from '../onnx/proto/onnx_pb.js';
import { DataType, makeFloatTensor, numel, tensorDims, tensorToFloat32 } from '../onnx/tensor.js';

/**
 * Fold every inference-mode BatchNormalization that directly follows a Conv into the Conv's weight and
 * bias: y = γ (conv(x) - μ) / sqrt(σ² + ε) + β is conv(x) with W scaled per output channel and a new bias.
 * The quantizer needs this done first: a QuantizeLinear between Conv and BatchNormalization would stop
 * onnxruntime from fusing either, and the weight that gets quantized must be the one the kernel runs.
 * Returns a new model; the input is not changed. Exact up to float rounding.
 */
export function foldBatchNorms(model: ModelProto): { model: ModelProto; folded: string[] } {
  const out = cloneModel(model);
  const g = out.graph!;
  const index = new GraphIndex(g);
  const folded: string[] = [];
  const drop = new Set<NodeProto>();
  for (const bn of index.order) {
    if (bn.opType !== 'BatchNormalization' || bn.output.filter((o) => o).length !== 1) continue;
    const conv = index.producer.get(bn.input[0]);
    if (!conv || conv.opType !== 'Conv' || drop.has(conv)) continue;
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
    const wNew = makeFloatTensor(w.name, dims, weights);
    g.initializer[g.initializer.indexOf(w)] = wNew;
    const biasName = bias?.name ?? `${conv.name || conv.output[0]}_folded_bias`;
    const bNew = makeFloatTensor(biasName, [channels], newBias);
    if (bias) g.initializer[g.initializer.indexOf(bias)] = bNew;
    else g.initializer.push(bNew);
    conv.input[2] = biasName;
    // the conv now writes what the BatchNormalization wrote, so every reader is unchanged
    conv.output[0] = bn.output[0];
    drop.add(bn);
    folded.push(bn.name || bn.output[0]);
  }
  if (drop.size === 0) return { model: out, folded };
  g.node = g.node.filter((n) => !drop.has(n));
  // the conv's old output no longer exists; its value_info would describe a dangling tensor
  const live = new Set(g.node.flatMap((n) => n.output));
  g.valueInfo = g.valueInfo.filter((v) => live.has(v.name));
  // BatchNormalization's parameters that nothing reads any more
  const read = new Set(g.node.flatMap((n) => n.input));
  for (const o of g.output) read.add(o.name);
  g.initializer = g.initializer.filter((t) => read.has(t.name));
  g.input = g.input.filter((i) => read.has(i.name) || !index.initializers.has(i.name));
  return { model: out, folded };
}

/** The constant behind a tensor, looking through Identity nodes (exporters alias equal parameters that way). */
function constantThroughIdentity(index: GraphIndex, tensor: string): TensorProto | undefined {
  let name = tensor;
  for (let hops = 0; hops < 16; hops++) {
    const c = index.constant(name);
    if (c) return c;
    const p = index.producer.get(name);
    if (!p || p.opType !== 'Identity') return undefined;
    name = p.input[0];
  }
  return undefined;
}
