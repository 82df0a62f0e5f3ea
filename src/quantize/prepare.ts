import picomatch from 'picomatch';
import type { Dataset } from '../data/dataset.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { evaluateClassifier, type Predictions } from '../onnx/runtime/classifier.js';
import { sessionFromModel, streamActivations } from '../onnx/runtime/session.js';
import type { Head } from '../onnx/head.js';
import { withExtraOutputs } from '../onnx/subgraph.js';
import { boundedBatch } from '../onnx/runtime/activationBudget.js';
import type { CalibratorName, Range } from './calibrate.js';
import { calibrateRanges } from './calibration.js';
import { foldBatchNorms } from './foldBatchNorm.js';
import { resolveConstantAliases } from '../onnx/aliases.js';
import { qdqSupport, quantizableNodes, quantizeQdq, tensorsToCalibrate, type QdqResult, type QuantizableNode } from './qdq.js';
import type { ActivationType, WeightBits } from './params.js';

/** A float model made ready for quantization: BatchNorms folded, activations calibrated once for every plan. */
export interface Prepared {
  folded: ModelProto;
  foldedBatchNorms: number;
  ranges: Map<string, Range>;
  nodes: QuantizableNode[];
  perChannel: boolean;
  /** why weights are per tensor, when they are */
  granularityNote?: string;
  /** nodes the user's exclude globs keep in float */
  excluded: string[];
  calibrator: CalibratorName;
  calibSamples: number;
}

export async function prepareQuantization(model: ModelProto, calib: Dataset, opts: { calibrator: CalibratorName; exclude: readonly string[]; threads: number }): Promise<Prepared> {
  const support = qdqSupport(model);
  if (support.kind === 'unsupported') throw new Error(support.reason);
  // a Conv whose bias (or weight) an exporter aliased through Identity is quantized like any other
  const { model: folded, folded: bns } = foldBatchNorms(resolveConstantAliases(model));
  const nodes = quantizableNodes(folded);
  const isExcluded = opts.exclude.length > 0 ? picomatch(opts.exclude as string[]) : () => false;
  const excluded = nodes.filter((n) => isExcluded(n.label)).map((n) => n.label);
  const ranges = await calibrateRanges(folded, calib, tensorsToCalibrate(folded, new Set(excluded)), opts.calibrator, opts.threads);
  return {
    folded,
    foldedBatchNorms: bns.length,
    ranges,
    nodes,
    perChannel: support.kind === 'per-channel',
    ...(support.kind === 'per-tensor' ? { granularityNote: support.reason } : {}),
    excluded,
    calibrator: opts.calibrator,
    calibSamples: calib.count,
  };
}

export function buildQuantized(prep: Prepared, keepFloat: ReadonlySet<string>, weightBits: WeightBits, activations: ActivationType = 'uint8'): QdqResult {
  return quantizeQdq(prep.folded, { ranges: prep.ranges, keepFloat: new Set([...prep.excluded, ...keepFloat]), weightBits, activations, perChannel: prep.perChannel });
}

/**
 * Run a classifier over `data` in onnxruntime: fused ('all', as deployed) or simulated ('basic': QDQ
 * evaluated in float). `head` is the judged output (absent: the model's only output, read as logits);
 * a model whose inputs fix the batch runs at it.
 */
export async function predict(model: ModelProto, data: Dataset, mode: 'fused' | 'simulated', threads: number, head?: Head): Promise<Predictions> {
  const session = await sessionFromModel(model, threads, { lean: mode === 'simulated' });
  try {
    return await evaluateClassifier(session, data, { batchSize: boundedBatch(model, 128), modelPath: 'quantized model', keepLogits: true, unlabelled: !data.labels, ...(head ? { head } : {}) });
  } finally {
    await session.release();
  }
}

/** Top-1 on labelled data, else top-1 agreement with `reference`: the calibration-set quality quantization is judged by. */
export function calibQuality(p: Predictions, reference: Predictions, labels: Int32Array | null): number {
  let hit = 0;
  for (let i = 0; i < p.pred.length; i++) hit += labels ? p.correct[i] : p.pred[i] === reference.pred[i] ? 1 : 0;
  return hit / p.pred.length;
}

/** ‖a - b‖ / ‖b‖ over whole arrays. */
export function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
}

/** One layer's share of the quantization error: relative error of its output minus that of its input. */
export interface LayerError {
  node: string;
  /** relative L2 error of the input the layer reads, and of the output it writes (after its own quantization) */
  input_error: number;
  output_error: number;
}

/**
 * Per-layer quantization error on `data`: the float model's activations against the quantized model's
 * dequantized ones, from one run of each in onnxruntime (the QDQ model simulated in float, so every
 * intermediate can be fetched). Sums of squares are accumulated batch by batch.
 */
export async function layerErrors(float: ModelProto, q: QdqResult, data: Dataset, threads: number): Promise<LayerError[]> {
  const g = q.model.graph!;
  const quantizedSet = new Set(q.quantized);
  const dqOf = (t: string): string => (q.tensors.includes(t) ? (g.output.some((o) => o.name === t) ? t : `${t}_DequantizeLinear_Output`) : t);
  const producers = g.node.filter((n) => quantizedSet.has(n.name) && ['Conv', 'Gemm', 'MatMul', 'Add', 'Mul', 'Concat'].includes(n.opType));
  // the node's input and output as the float model names them
  const pairs = producers.map((n) => {
    const out = n.output[0].replace(/_QuantizeLinear_Input$/, '');
    const input = n.input[0].replace(/_DequantizeLinear_Output$/, '');
    return { node: n.name, input, out };
  });
  const floatNames = [...new Set(pairs.flatMap((p) => [p.input, p.out]))];
  const qNames = [...new Set(floatNames.map(dqOf))];
  const fs = await sessionFromModel(withExtraOutputs(float, floatNames), threads, { lean: true });
  const qs = await sessionFromModel(withExtraOutputs(q.model, qNames), threads, { lean: true });
  const sums = new Map<string, { num: number; den: number }>();
  try {
    // batch by batch at the model's own batch when its inputs fix one
    await streamActivations([{ session: fs, fetch: floatNames }, { session: qs, fetch: qNames }], data, boundedBatch(q.model, 64), ([fr, qr]) => {
      for (const name of floatNames) {
        const a = qr.get(dqOf(name))!.data;
        const b = fr.get(name)!.data;
        const s = sums.get(name) ?? { num: 0, den: 0 };
        for (let i = 0; i < b.length; i++) {
          const d = a[i] - b[i];
          s.num += d * d;
          s.den += b[i] * b[i];
        }
        sums.set(name, s);
      }
    });
  } finally {
    await fs.release();
    await qs.release();
  }
  const err = (t: string): number => {
    const s = sums.get(t)!;
    return s.den > 0 ? Math.sqrt(s.num / s.den) : 0;
  };
  return pairs.map((p) => ({ node: p.node, input_error: err(p.input), output_error: err(p.out) }));
}
