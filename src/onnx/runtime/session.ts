import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Dataset } from '../../data/dataset.js';
import { sliceBatch } from '../../data/dataset.js';
import { runBatches, sessionFixedBatch } from './batches.js';
import { onnxruntime, type Ort, type OrtSession } from './ort.js';
import { saveModel, serializeModel } from '../model.js';
import { onInterrupt } from '../../io/cleanup.js';
import { describe, UserError } from '../../errors.js';
import type { ModelProto } from '../proto/onnx_pb.js';

/**
 * A session over a model proto (recovery works on models that are not files yet). A big model goes to
 * onnxruntime through a temp file written tensor by tensor (saveModel): serialising it whole would hold
 * protobuf-es's chunks and their join beside the proto, and onnxruntime's load on top (ViT-B/16's
 * calibration score peaked 1430 MB above the process before the session ran a batch).
 */
export async function sessionFromModel(model: ModelProto, threads = 0, opts: { lean?: boolean; fileAboveBytes?: number } = {}): Promise<OrtSession> {
  const { ort } = onnxruntime();
  // lean (activation capture, calibration scores): basic graph optimisation holds less than 'all'.
  // The CPU arena stays on, with batches cut to fit it (boundedBatch): without it every activation is
  // malloc'd on whichever libuv thread runs the session, and glibc's per-thread heaps kept freed
  // buffers unpredictably (ViT-B/16, 3 batches of 55: 2.0-5.4 GB above the session instead of
  // 1.4-1.7 GB) while page faults on fresh buffers made runs 1.5-2.5x slower (ResNet-50, ViT-B/16)
  const options = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: opts.lean ? 'basic' : 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  } as const;
  if (weightBytes(model) > (opts.fileAboveBytes ?? BIG_MODEL_BYTES)) return sessionThroughFile(model, options);
  try {
    return await ort.InferenceSession.create(serializeModel(model), options);
  } catch (e) {
    throw cannotLoad(e);
  }
}

function cannotLoad(e: unknown): Error {
  return new Error(`recovery: onnxruntime cannot load an intermediate model (${describe(e).split('\n')[0]})`);
}

async function sessionThroughFile(model: ModelProto, options: Parameters<Ort['InferenceSession']['create']>[1]): Promise<OrtSession> {
  const { ort } = onnxruntime();
  const dir = fs.mkdtempSync(path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'prune-guard-session-'));
  const done = onInterrupt(() => fs.rmSync(dir, { recursive: true, force: true }));
  try {
    const file = path.join(dir, 'model.onnx');
    saveModel(model, file);
    return await ort.InferenceSession.create(file, options);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw cannotLoad(e);
  } finally {
    // onnxruntime has read the file (or mapped it, which unlinking does not disturb)
    fs.rmSync(dir, { recursive: true, force: true });
    done();
  }
}

const BIG_MODEL_BYTES = 64 * 2 ** 20;

function weightBytes(model: ModelProto): number {
  let total = 0;
  for (const t of model.graph?.initializer ?? []) total += t.rawData.byteLength + 4 * t.floatData.length;
  return total;
}

export interface Activation {
  /** [samples, ...] */
  dims: number[];
  data: Float32Array;
}

/**
 * Run the whole calibration set and concatenate the fetched tensors (as float32) along the sample axis;
 * `extraFeeds` go with every batch (the parameters of an evaluation graph).
 */
export async function captureActivations(
  session: OrtSession,
  data: Dataset,
  fetch: readonly string[],
  batchSize = 128,
  extraFeeds?: Parameters<typeof runBatches>[5],
): Promise<Map<string, Activation>> {
  const parts = new Map<string, { dims: number[]; chunks: Float32Array[] }>();
  await runBatches(session, data, batchSize, fetch, (values) => {
    for (const name of fetch) {
      const t = values.get(name)!;
      const entry = parts.get(name) ?? { dims: t.dims.slice(1), chunks: [] };
      // copy: onnxruntime may reuse the output buffer after dispose
      entry.chunks.push(Float32Array.from(t.data));
      parts.set(name, entry);
    }
  }, extraFeeds);
  const out = new Map<string, Activation>();
  for (const [name, { dims, chunks }] of parts) {
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const data32 = new Float32Array(total);
    let o = 0;
    for (const c of chunks) {
      data32.set(c, o);
      o += c.length;
    }
    out.set(name, { dims: [data.count, ...dims], data: data32 });
  }
  return out;
}

/** One batch of fetched tensors: samples [first, first + count) of the data set, valid only during the callback. */
export type BatchActivations = Map<string, Activation>;

/**
 * Run the data set through one or more sessions batch by batch and hand each batch's fetched tensors
 * to `onBatch` without keeping them: what a caller needs (sampled patches, running sums) is reduced per
 * batch, so memory is one batch of activations instead of the whole set's (VGG-16's second conv reads
 * 12.8 MB per sample: 6.6 GB for 512 samples). Every session runs the same batch before `onBatch`, so
 * their activations can be compared sample by sample. A session whose inputs fix the batch runs at it
 * (see runBatches); then every session must fix the same one, since they run the same samples.
 */
export async function streamActivations(
  runs: readonly { session: OrtSession; fetch: readonly string[] }[],
  data: Dataset,
  batchSize: number,
  onBatch: (perRun: BatchActivations[], first: number, count: number) => void,
): Promise<void> {
  const fixed = runs.map((r) => sessionFixedBatch(r.session, data.inputs.keys()));
  const step = fixed.find((f) => f !== undefined) ?? batchSize;
  if (runs.length === 1) {
    await runBatches(runs[0].session, data, step, runs[0].fetch, (values, first, count) => onBatch([values], first, count));
    return;
  }
  for (let start = 0; start < data.count; start += step) {
    const end = Math.min(data.count, start + step);
    const slice = takeRange(data, start, end);
    const perRun: BatchActivations[] = [];
    for (const { session, fetch } of runs) {
      await runBatches(session, slice, step, fetch, (values) => {
        // copied: the session's next run may reuse onnxruntime's buffers
        perRun.push(new Map([...values].map(([k, v]) => [k, { dims: v.dims, data: Float32Array.from(v.data) }])));
      });
    }
    onBatch(perRun, start, end - start);
  }
}

/** Samples [start, end) as a data set of their own (views, no copy). */
function takeRange(data: Dataset, start: number, end: number): Dataset {
  const w = data.labelWidth ?? 1;
  return { ...data, count: end - start, inputs: sliceBatch(data, start, end), labels: data.labels && data.labels.subarray(start * w, end * w) };
}
