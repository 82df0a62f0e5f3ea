/**
 * The INT8 bench: per model, the `quantize:int8` step as the pipeline runs it (calibration, weight
 * precision and float layers chosen by measurement), and `quantize:dynamic` where the model has MatMul
 * layers, then fp32 against INT8: quality, latency at batch 1 and 32 interleaved in one pass, file
 * size, and how many layers onnxruntime runs in integer kernels. Fixtures are calibrated on their
 * calibration set and judged by top-1 on their evaluation set; the torchvision models (random weights,
 * no data) are calibrated on seeded random inputs and judged on other seeded inputs by how closely
 * INT8 follows fp32, since their accuracy means nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { median } from 'simple-statistics';
import { markdownTable } from 'markdown-table';
import { DEFAULT_CONFIG } from '../src/config/schema.js';
import { loadDataset, sliceBatch, type Dataset } from '../src/data/dataset.js';
import { silentProgress } from '../src/io/progress.js';
import { measureInterleaved } from '../src/measure/latency.js';
import { accuracy, agreement } from '../src/measure/metrics.js';
import { loadModel } from '../src/onnx/model.js';
import type { ModelProto } from '../src/onnx/proto/onnx_pb.js';
import { evaluateClassifier, type Predictions } from '../src/onnx/runtime/classifier.js';
import { openSession } from '../src/onnx/runtime/ort.js';
import { modelInputs } from '../src/onnx/signature.js';
import { quantizeDynamicStep, quantizeStep } from '../src/pipeline/quantizeStep.js';
import { dynamicCandidates } from '../src/quantize/dynamic.js';
import { relativeL2 } from '../src/quantize/prepare.js';
import { syntheticDataset, type BenchModel, type BenchOptions } from './stages.js';

/**
 * How INT8 is judged against fp32: top-1 on labelled data; without data, the share of seeded inputs on
 * which INT8's top-1 class is fp32's, the relative L2 error of its logits, the same error of the part of
 * the logits that varies with the input, and how many distinct classes fp32 predicts on those inputs.
 * Random weights can send every input to one class with nearly the same logits: agreement is then
 * trivially 100% and the whole-logit error mostly measures the constant part, so the varying part is
 * judged on its own.
 */
export type Quality =
  | { kind: 'top1'; fp32: number; int8: number }
  | { kind: 'agreement'; samples: number; agreement: number; relative_error: number; varying_error: number; classes: number };

export interface QuantizeRow {
  model: string;
  mode: 'int8' | 'dynamic';
  quality: Quality;
  /** fp32 p50 / INT8 p50, interleaved */
  speedup_b1: number;
  speedup_b32: number;
  size_ratio: number;
  weight_bits: number;
  integer_layers: number;
  layers: number;
  float_layers: string[];
  /** layers onnxruntime runs in float kernels, counted by kernel (the plan's float layers included) */
  float_kernels: Record<string, number>;
  error?: string;
}

/** Seeded sets for models without data: 32 calibration inputs, and 64 others (another seed) to judge on. */
const SYNTHETIC = { calib: 32, eval: 64, calibSeed: 1, evalSeed: 1000 };

interface Sets {
  data: Dataset;
  /** unlabelled for the synthetic sets, so the step judges its plans by agreement with fp32, not by fake labels */
  calib: Dataset;
  labelled: boolean;
}

function setsOf(model: BenchModel, dense: ModelProto, options: BenchOptions): Sets {
  if (!model.data) {
    const data = syntheticDataset(dense, model.file, SYNTHETIC.eval, SYNTHETIC.evalSeed);
    return { data: { ...data, labels: null }, calib: { ...syntheticDataset(dense, model.file, SYNTHETIC.calib, SYNTHETIC.calibSeed), labels: null }, labelled: false };
  }
  if (!model.calib) throw new Error(`${model.name}: labelled data without a calibration set`);
  const inputs = modelInputs(dense, model.file);
  const all = loadDataset(model.data, inputs, { requireLabels: true, modelPath: model.file });
  const n = Math.min(all.count, options.evalSamples);
  const data: Dataset = { ...all, count: n, inputs: sliceBatch(all, 0, n), labels: all.labels!.subarray(0, n) };
  return { data, calib: loadDataset(model.calib, inputs, { requireLabels: false, modelPath: model.file }), labelled: true };
}

async function outputs(file: string, sets: Sets): Promise<Predictions> {
  const session = await openSession(file, { threads: 0 });
  try {
    // 224x224 inputs: small batches keep the activations of the big models in memory
    return await evaluateClassifier(session, sets.data, { batchSize: sets.labelled ? 256 : 8, modelPath: file, keepLogits: !sets.labelled, unlabelled: !sets.labelled });
  } finally {
    await session.release();
  }
}

/** logits [samples, classes] minus each class's mean over the samples */
function centred(logits: Float32Array, classes: number): Float32Array {
  const n = logits.length / classes;
  const mean = new Float64Array(classes);
  for (let i = 0; i < logits.length; i++) mean[i % classes] += logits[i] / n;
  return logits.map((x, i) => x - mean[i % classes]);
}

async function qualityOf(fp32File: string, int8File: string, sets: Sets): Promise<Quality> {
  const f = await outputs(fp32File, sets);
  const q = await outputs(int8File, sets);
  if (sets.labelled) return { kind: 'top1', fp32: accuracy(f.pred, sets.data.labels!), int8: accuracy(q.pred, sets.data.labels!) };
  return {
    kind: 'agreement',
    samples: sets.data.count,
    agreement: agreement(f.pred, q.pred),
    relative_error: relativeL2(q.logits!, f.logits!),
    varying_error: relativeL2(centred(q.logits!, f.choices), centred(f.logits!, f.choices)),
    classes: new Set(f.pred).size,
  };
}

/**
 * Latency here runs on one intra-op thread, each sample the best of `options.repeat` back-to-back runs:
 * on two busy cores, onnxruntime's threading and preempted runs would otherwise decide the ratio.
 */
const THREADS = 1;

export async function benchQuantize(model: BenchModel, mode: 'int8' | 'dynamic', options: BenchOptions, workDir: string): Promise<QuantizeRow> {
  const dense = loadModel(model.file).proto;
  const labelled = Boolean(model.data);
  const artifact = path.join(workDir, `${model.name}.${mode}.onnx`);
  const quality: Quality = labelled ? { kind: 'top1', fp32: NaN, int8: NaN } : { kind: 'agreement', samples: SYNTHETIC.eval, agreement: NaN, relative_error: NaN, varying_error: NaN, classes: 0 };
  const base = { model: model.name, mode, quality, speedup_b1: NaN, speedup_b32: NaN, size_ratio: NaN, weight_bits: 0, integer_layers: 0, layers: 0, float_layers: [], float_kernels: {} };
  try {
    const sets = setsOf(model, dense, options);
    const config = { ...DEFAULT_CONFIG, quantize: mode, batchSizes: options.planBatches, latency: { ...DEFAULT_CONFIG.latency, threads: THREADS } };
    const step = { source: model.file, calib: sets.calib, config, artifact, progress: silentProgress, provider: 'cpu' as const };
    const q = mode === 'int8' ? await quantizeStep(step) : await quantizeDynamicStep(step);
    const samples = await measureInterleaved([model.file, artifact], sliceBatch(sets.data, 0, 32), { batchSizes: [1, 32], warmup: options.warmup, runs: options.runs, threads: THREADS, repeat: options.repeat });
    const ratio = (b: number) => median(samples[0][b]) / median(samples[1][b]);
    return {
      ...base,
      quality: await qualityOf(model.file, artifact, sets),
      speedup_b1: ratio(0),
      speedup_b32: ratio(1),
      size_ratio: fs.statSync(artifact).size / fs.statSync(model.file).size,
      weight_bits: q.info.weights.bits,
      integer_layers: q.info.kernels.layers.filter((l) => l.integer).length,
      layers: q.info.kernels.layers.length,
      float_layers: q.info.float_layers.map((f) => `${f.node} (${f.reason})`),
      float_kernels: q.info.kernels.layers.filter((l) => !l.integer).reduce<Record<string, number>>((c, l) => ({ ...c, [l.kernel]: (c[l.kernel] ?? 0) + 1 }), {}),
    };
  } catch (e) {
    return { ...base, error: e instanceof Error ? e.message.split('\n')[0] : String(e) };
  } finally {
    fs.rmSync(artifact, { force: true });
  }
}

/** The rows judged one way (`top1` or `agreement`), as one table: the two kinds have different quality columns. */
export function renderQuantizeTable(rows: readonly QuantizeRow[], kind: Quality['kind']): string {
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const qualityHead = kind === 'top1' ? ['fp32 top-1', 'INT8 top-1', 'change'] : ['top-1 agreement with fp32', 'fp32 classes', 'logit error', 'error of the varying part'];
  const qualityCells = (q: Quality): string[] =>
    q.kind === 'top1'
      ? [pct(q.fp32), pct(q.int8), `${((q.int8 - q.fp32) * 100).toFixed(2)} pt`]
      : [`${pct(q.agreement)} of ${q.samples}`, String(q.classes), q.relative_error.toFixed(4), q.varying_error.toFixed(4)];
  const kernels = (k: Record<string, number>): string => Object.entries(k).map(([name, n]) => `${name} ×${n}`).join(', ') || '—';
  return markdownTable(
    [
      ['model', 'mode', ...qualityHead, 'speedup b=1', 'speedup b=32', 'size', 'weights', 'integer layers', 'kept float', 'float kernels'],
      ...rows
        .filter((r) => r.quality.kind === kind)
        .map((r) =>
          r.error
            ? [r.model, r.mode, ...qualityHead.map((_, i) => (i === 0 ? `error: ${r.error}` : '—')), '—', '—', '—', '—', '—', '—', '—']
            : [r.model, r.mode, ...qualityCells(r.quality), `${r.speedup_b1.toFixed(2)}x`, `${r.speedup_b32.toFixed(2)}x`, `${r.size_ratio.toFixed(2)}x`, `${r.weight_bits}-bit`, `${r.integer_layers} of ${r.layers}`, r.float_layers.join(', ') || '—', kernels(r.float_kernels)],
        ),
    ],
    { alignDelimiters: false },
  );
}

/** The modes worth benching on a model: static INT8 always, dynamic where it has MatMul layers to rewrite. */
export function quantizeModes(file: string): ('int8' | 'dynamic')[] {
  return dynamicCandidates(loadModel(file).proto).length > 0 ? ['int8', 'dynamic'] : ['int8'];
}
