import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onInterrupt } from '../io/cleanup.js';
import { describe, UserError } from '../errors.js';
import { loadModel } from '../onnx/model.js';
import type { ModelProto, NodeProto } from '../onnx/proto/onnx_pb.js';
import { onnxruntime } from '../onnx/runtime/ort.js';
import { shortOrtError } from '../onnx/runtime/ortErrors.js';

/** Which kernel onnxruntime runs for one compute layer of the model as written. */
export interface LayerKernel {
  /** the layer's node name in the file */
  node: string;
  op: string;
  /** the op onnxruntime runs for it after its graph optimisations, e.g. QLinearConv, QGemm, FusedConv */
  kernel: string;
  integer: boolean;
}

/** The kernels of a quantized model as onnxruntime runs it, read from its optimised graph. */
export interface KernelReport {
  /** every op in the optimised graph with its count, domain-qualified when not ONNX's own */
  ops: Record<string, number>;
  /** nodes running integer kernels (QLinear*, QGemm, ConvInteger, MatMulInteger, ...) */
  integer_nodes: number;
  /** Conv, Gemm and MatMul nodes left in float (including onnxruntime's fused float variants) */
  float_compute_nodes: number;
  /** QuantizeLinear and DequantizeLinear left: every one is a crossing between float and integer code */
  boundaries: number;
  /** each Conv/Gemm/MatMul of the model as written, with the kernel it ended up in */
  layers: LayerKernel[];
}

const INTEGER_OPS = /^(QLinear\w+|QGemm|QAttention|ConvInteger|MatMulInteger|MatMulIntegerToFloat|DynamicQuantizeMatMul|QuantizeBFP|NhwcMaxPool)$/;
const FLOAT_COMPUTE = /^(Conv|FusedConv|Gemm|FusedGemm|MatMul|FusedMatMul|ConvTranspose)$/;
const COMPUTE = new Set(['Conv', 'Gemm', 'MatMul', 'ConvTranspose', 'MatMulInteger', 'ConvInteger']);

/**
 * Classify the nodes of onnxruntime's optimised graph against the model as written. onnxruntime keeps
 * the name of the node it fuses into (a QLinearConv carries its Conv's name, sometimes with a
 * `_token_N` suffix from the layout transformer), which ties each layer to its kernel.
 */
export function kernelReport(written: ModelProto, optimised: ModelProto): KernelReport {
  const ops: Record<string, number> = {};
  let integer = 0;
  let floatCompute = 0;
  let boundaries = 0;
  for (const n of optimised.graph!.node) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    ops[key] = (ops[key] ?? 0) + 1;
    if (INTEGER_OPS.test(n.opType)) integer++;
    else if (FLOAT_COMPUTE.test(n.opType)) floatCompute++;
    else if (n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear') boundaries++;
  }
  const nodes = optimised.graph!.node;
  const compute = nodes.filter((o) => o.opType !== 'QuantizeLinear' && o.opType !== 'DequantizeLinear');
  // layout transformers name a rewritten node after its output instead (`<output>_nchwc`)
  // (with a fused activation, after the activation's output)
  const consumers = written.graph!.node;
  const byOutput = (t: string | undefined): NodeProto | undefined =>
    !t ? undefined : compute.find((o) => o.name === `${t}_nchwc` || o.name.startsWith(`${t}_nchwc`)) ?? compute.find((o) => o.output.includes(t));
  const find = (n: NodeProto): NodeProto | undefined => {
    const act = consumers.filter((c) => c.input[0] === n.output[0]);
    return (
      nodes.find((o) => o.name.replace(/_token_\d+$/, '') === n.name) ??
      // fusions that keep the node's name as a prefix (`<name>/MatMulScaleFusion/`)
      compute.find((o) => o.name.startsWith(`${n.name}/`)) ??
      byOutput(n.output[0]) ??
      (act.length === 1 && ['Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'HardSigmoid'].includes(act[0].opType) ? byOutput(act[0].output[0]) : undefined)
    );
  };
  const layers: LayerKernel[] = [];
  for (const n of written.graph!.node) {
    if (!COMPUTE.has(n.opType) || !n.name) continue;
    const o = find(n);
    const kernel = !o ? 'unknown' : o.domain && o.domain !== 'ai.onnx' && o.domain !== 'com.microsoft' ? `${o.opType} (${o.domain})` : o.opType;
    layers.push({ node: n.name, op: n.opType, kernel, integer: !!o && INTEGER_OPS.test(o.opType) });
  }
  return { ops: Object.fromEntries(Object.entries(ops).sort(([a], [b]) => a.localeCompare(b))), integer_nodes: integer, float_compute_nodes: floatCompute, boundaries, layers };
}

/**
 * The graph onnxruntime will run for `modelPath` with full optimisation on CPU, as the measurement
 * sessions open it: written by onnxruntime itself (`optimizedModelFilePath`) into a temp folder.
 */
export async function optimisedGraph(modelPath: string, threads = 1): Promise<ModelProto> {
  const { ort } = onnxruntime();
  const dir = fs.mkdtempSync(path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'prune-guard-kernels-'));
  const done = onInterrupt(() => fs.rmSync(dir, { recursive: true, force: true }));
  try {
    const file = path.join(dir, 'optimised.onnx');
    let session;
    try {
      session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: threads, optimizedModelFilePath: file, logSeverityLevel: 3 });
    } catch (e) {
      throw new UserError(`${modelPath}: onnxruntime cannot load the quantized model: ${shortOrtError(describe(e))}`);
    }
    await session.release();
    return loadModel(file).proto;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    done();
  }
}
