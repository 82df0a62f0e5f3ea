/**
 * The INT8 bench: per fixture with a calibration set, the `quantize:int8` step as the pipeline runs it
 * (calibration, weight precision and float layers chosen by measurement), and `quantize:dynamic` where
 * the model has MatMul layers, then fp32 against INT8:
 * top-1 on the evaluation set, latency at batch 1 and 32 interleaved in one pass, file size, and how
 * many layers onnxruntime runs in integer kernels.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { median } from 'simple-statistics';
import { markdownTable } from 'markdown-table';
import { DEFAULT_CONFIG } from '../src/config/schema.js';
import { loadDataset, sliceBatch, type Dataset } from '../src/data/dataset.js';
import { silentProgress } from '../src/io/progress.js';
import { measureInterleaved } from '../src/measure/latency.js';
import { accuracy } from '../src/measure/metrics.js';
import { loadModel } from '../src/onnx/model.js';
import { evaluateClassifier } from '../src/onnx/runtime/classifier.js';
import { openSession } from '../src/onnx/runtime/ort.js';
import { modelInputs } from '../src/onnx/signature.js';
import { quantizeDynamicStep, quantizeStep } from '../src/pipeline/quantizeStep.js';
import { dynamicCandidates } from '../src/quantize/dynamic.js';
import type { BenchModel, BenchOptions } from './stages.js';

export interface QuantizeRow {
  model: string;
  mode: 'int8' | 'dynamic';
  accuracy_fp32: number;
  accuracy_int8: number;
  /** fp32 p50 / INT8 p50, interleaved */
  speedup_b1: number;
  speedup_b32: number;
  size_ratio: number;
  weight_bits: number;
  integer_layers: number;
  layers: number;
  float_layers: string[];
  error?: string;
}

async function top1(file: string, data: Dataset): Promise<number> {
  const session = await openSession(file, { threads: 0 });
  try {
    const p = await evaluateClassifier(session, data, { batchSize: 256, outputsAreProbabilities: false, modelPath: file });
    return accuracy(p.pred, data.labels!);
  } finally {
    await session.release();
  }
}

/**
 * Latency here runs on one intra-op thread, each sample the best of 3 back-to-back runs: on two busy
 * cores, onnxruntime's threading and preempted runs would otherwise decide the ratio.
 */
const TIMING = { threads: 1, repeat: 3 };

export async function benchQuantize(model: BenchModel & { calib: string }, mode: 'int8' | 'dynamic', options: BenchOptions, workDir: string): Promise<QuantizeRow> {
  const dense = loadModel(model.file).proto;
  const inputs = modelInputs(dense, model.file);
  const all = loadDataset(model.data!, inputs, { requireLabels: true, modelPath: model.file });
  const n = Math.min(all.count, options.evalSamples);
  const data: Dataset = { ...all, count: n, inputs: sliceBatch(all, 0, n), labels: all.labels!.subarray(0, n) };
  const calib = loadDataset(model.calib, inputs, { requireLabels: false, modelPath: model.file });
  const artifact = path.join(workDir, `${model.name}.${mode}.onnx`);
  const base = { model: model.name, mode, accuracy_fp32: NaN, accuracy_int8: NaN, speedup_b1: NaN, speedup_b32: NaN, size_ratio: NaN, weight_bits: 0, integer_layers: 0, layers: 0, float_layers: [] };
  try {
    const config = { ...DEFAULT_CONFIG, quantize: mode, batchSizes: [1, 32], latency: { ...DEFAULT_CONFIG.latency, threads: TIMING.threads } };
    const step = { source: model.file, calib, config, artifact, progress: silentProgress, provider: 'cpu' as const };
    const q = mode === 'int8' ? await quantizeStep(step) : await quantizeDynamicStep(step);
    const samples = await measureInterleaved([model.file, artifact], sliceBatch(data, 0, 32), { batchSizes: [1, 32], warmup: options.warmup, runs: options.runs, ...TIMING });
    const ratio = (b: number) => median(samples[0][b]) / median(samples[1][b]);
    return {
      ...base,
      accuracy_fp32: await top1(model.file, data),
      accuracy_int8: await top1(artifact, data),
      speedup_b1: ratio(0),
      speedup_b32: ratio(1),
      size_ratio: fs.statSync(artifact).size / fs.statSync(model.file).size,
      weight_bits: q.info.weights.bits,
      integer_layers: q.info.kernels.layers.filter((l) => l.integer).length,
      layers: q.info.kernels.layers.length,
      float_layers: q.info.float_layers.map((f) => `${f.node} (${f.reason})`),
    };
  } catch (e) {
    return { ...base, error: e instanceof Error ? e.message.split('\n')[0] : String(e) };
  } finally {
    fs.rmSync(artifact, { force: true });
  }
}

export function renderQuantizeTable(rows: readonly QuantizeRow[]): string {
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  return markdownTable(
    [
      ['model', 'mode', 'fp32 top-1', 'INT8 top-1', 'change', 'speedup b=1', 'speedup b=32', 'size', 'weights', 'integer layers', 'kept float'],
      ...rows.map((r) =>
        r.error
          ? [r.model, r.mode, '—', '—', `error: ${r.error}`, '—', '—', '—', '—', '—', '—']
          : [r.model, r.mode, pct(r.accuracy_fp32), pct(r.accuracy_int8), `${((r.accuracy_int8 - r.accuracy_fp32) * 100).toFixed(2)} pt`, `${r.speedup_b1.toFixed(2)}x`, `${r.speedup_b32.toFixed(2)}x`, `${r.size_ratio.toFixed(2)}x`, `${r.weight_bits}-bit`, `${r.integer_layers} of ${r.layers}`, r.float_layers.join(', ') || '—'],
      ),
    ],
    { alignDelimiters: false },
  );
}

/** The modes worth benching on a model: static INT8 always, dynamic where it has MatMul layers to rewrite. */
export function quantizeModes(file: string): ('int8' | 'dynamic')[] {
  return dynamicCandidates(loadModel(file).proto).length > 0 ? ['int8', 'dynamic'] : ['int8'];
}
