import { errorFunction, median } from 'simple-statistics';
import type { SpeedFunnel, Step } from './step.js';
import { MAC_OPS, modelCost, quantizedWeights, weightTensor } from '../onnx/flops.js';
import { GraphIndex } from '../onnx/graph.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { DataType, FLOAT_TYPES, numel, tensorDims, tensorToFloat32 } from '../onnx/tensor.js';

/** Bytes per element of the types a weight may be stored in: float, or integer behind a DequantizeLinear. */
const ITEM_SIZE: Record<number, number> = { 1: 4, 10: 2, 11: 8, 16: 2, [DataType.INT8]: 1, [DataType.UINT8]: 1, [DataType.INT32]: 4 };

/** What a saved model's weights would cost if zeros were skipped, in storage and in compute. */
export interface WeightFacts {
  /**
   * Bytes of every float initializer in a bitmask sparse encoding: one bit per entry (is it nonzero?)
   * plus the nonzero values in the tensor's own float width. Chosen over CSR because it is never worse
   * than ~1/32 above dense (CSR with int32 indices doubles the size below 50% sparsity) and its size
   * depends only on the count of nonzeros, so it is comparable across methods.
   */
  sparseBytes: number;
  /** MACs per sample whose weight is nonzero: what a kernel that skips zero weights would execute */
  sparseMacs: number;
  /** bytes of the weights as stored (float at their width, quantized at their integer width) */
  weightBytes: number;
  /**
   * Every MAC node's op with its weight's shape and stored type, in order: two models with the same
   * key run the same kernels, whatever values (zeros included) their weights hold and whatever biases
   * recovery added
   */
  kernels: string;
}


export function weightFacts(model: ModelProto): WeightFacts {
  const index = new GraphIndex(model.graph!);
  const density = new Map<string, number>();
  const { stored, auxiliary } = quantizedWeights(index);
  let sparseBytes = 0;
  let weightBytes = 0;
  for (const t of index.initializers.values()) {
    if (auxiliary.has(t.name) || (!FLOAT_TYPES.has(t.dataType) && !stored.has(t.name))) continue;
    const v = tensorToFloat32(t);
    let nonzero = 0;
    for (let i = 0; i < v.length; i++) if (v[i] !== 0) nonzero++;
    const size = ITEM_SIZE[t.dataType] ?? 4;
    sparseBytes += Math.ceil(v.length / 8) + nonzero * size;
    weightBytes += v.length * size;
    density.set(t.name, v.length ? nonzero / v.length : 1);
  }
  // modelCost lists MAC nodes in the same topological order as this index
  const macNodes = index.order.filter((n) => MAC_OPS.has(n.opType));
  const cost = modelCost(model);
  let sparseMacs = 0;
  const kernels: string[] = [];
  cost.nodes.forEach((c, k) => {
    if (c.macs === null) return;
    const node = macNodes[k];
    // the weight operand; for a MatMul or Einsum it may be either side, activation x activation has none
    const weight = node.opType === 'MatMul' || node.opType === 'MatMulInteger' || node.opType === 'Einsum' ? node.input.slice(0, 2).find((i) => (weightTensor(index, i)?.dims.length ?? 0) >= 2) : node.input[1];
    const t = weight ? weightTensor(index, weight) : undefined;
    kernels.push(`${node.opType}:${t ? `${tensorDims(t).join('x')}/${t.dataType}` : '-'}`);
    const d = t && numel(tensorDims(t)) > 0 ? (density.get(t.name) ?? 1) : 1;
    sparseMacs += c.macs * d;
  });
  return { sparseBytes, sparseMacs, weightBytes, kernels: kernels.join(' ') };
}

/**
 * Two-sided Mann-Whitney U test (normal approximation with tie and continuity correction): the p-value
 * that two latency samples come from the same distribution. Deterministic, unlike a bootstrap, so the
 * same samples always give the same verdict.
 */
export function mannWhitneyP(x: readonly number[], y: readonly number[]): number {
  const n1 = x.length;
  const n2 = y.length;
  if (n1 === 0 || n2 === 0) return 1;
  const all = [...x.map((v) => ({ v, first: true })), ...y.map((v) => ({ v, first: false }))].sort((a, b) => a.v - b.v);
  const n = all.length;
  let rankSumX = 0;
  let ties = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && all[j + 1].v === all[i].v) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (all[k].first) rankSumX += rank;
    const t = j - i + 1;
    ties += t * t * t - t;
    i = j + 1;
  }
  const u = rankSumX - (n1 * (n1 + 1)) / 2;
  const mean = (n1 * n2) / 2;
  const variance = ((n1 * n2) / 12) * (n + 1 - ties / (n * (n - 1)));
  if (!(variance > 0)) return 1;
  const z = Math.max(0, Math.abs(u - mean) - 0.5) / Math.sqrt(variance);
  return Math.min(1, 1 - errorFunction(z / Math.SQRT2));
}

/** A speed claim needs the two samples to differ at this level; otherwise speed is "unchanged". */
export const SPEED_ALPHA = 0.05;

const ratioOr1 = (a: number, b: number): number => (b > 0 ? a / b : 1);

export interface FunnelInput {
  dense: Step;
  denseFacts: WeightFacts;
  step: Step;
  stepFacts: WeightFacts;
  /** raw latency samples (ms) of the dense model and of this step at the primary batch, interleaved */
  denseSamples: readonly number[];
  stepSamples: readonly number[];
}

/**
 * Where a step's speed went, relative to the dense step: parameters -> MACs -> weight bytes -> the speedup those MACs
 * promise -> the measured speedup -> efficiency (measured / promised). The promise counts only MACs with
 * a nonzero weight, so zeros that the runtime still multiplies show up as lost efficiency.
 */
export function speedFunnel(input: FunnelInput): SpeedFunnel {
  const { dense, step, stepFacts, denseFacts, denseSamples, stepSamples } = input;
  // the dense model runs all its MACs; this step could run only those with a nonzero weight
  const idealSpeedup = ratioOr1(dense.flops, stepFacts.sparseMacs);
  const measured = denseSamples.length > 0 && stepSamples.length > 0;
  const speedup = measured ? ratioOr1(median(denseSamples as number[]), median(stepSamples as number[])) : null;
  const p = measured ? mannWhitneyP(denseSamples, stepSamples) : null;
  // the same MAC weights in shape and stored type run the same kernels (unstructured and N:M zeros keep
  // every shape): a measured difference there is bias or noise, never a speedup the model can have.
  // Quantized weights keep MACs and shapes but run integer kernels.
  const sameKernels = stepFacts.kernels === denseFacts.kernels;
  const speed = p === null || speedup === null ? null : !sameKernels && p < SPEED_ALPHA && speedup !== 1 ? (speedup > 1 ? 'faster' : 'slower') : 'unchanged';
  return {
    batch: step.latency?.batch ?? dense.latency?.batch ?? 1,
    params_ratio: ratioOr1(step.nonzero_params, dense.nonzero_params),
    flops_ratio: ratioOr1(step.flops, dense.flops),
    sparse_flops_ratio: ratioOr1(stepFacts.sparseMacs, dense.flops),
    bytes_ratio: ratioOr1(stepFacts.weightBytes, denseFacts.weightBytes),
    ideal_speedup: idealSpeedup,
    speedup,
    efficiency: speedup === null ? null : speedup / idealSpeedup,
    p_value: p,
    speed,
  };
}

/** A batch at which a step measured slower than dense. */
export interface SlowerThanDense {
  batch: number;
  speedup: number;
  p_value: number;
}

/**
 * The batches at which a step's interleaved latency came out slower than dense: a structured prune that
 * ships slower than the model it replaces must say so, whatever the noise (the p-value says how sure).
 */
export function slowerThanDense(batches: readonly number[], denseSamples: readonly (readonly number[])[], stepSamples: readonly (readonly number[])[]): SlowerThanDense[] {
  return batches.flatMap((batch, j) => {
    const d = denseSamples[j];
    const s = stepSamples[j];
    if (!d?.length || !s?.length) return [];
    const speedup = median(d as number[]) / median(s as number[]);
    return speedup < 1 ? [{ batch, speedup, p_value: mannWhitneyP(d, s) }] : [];
  });
}
