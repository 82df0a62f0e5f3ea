import { sliceBatch, type Dataset, type InputArray } from '../../data/dataset.js';
import { allocTypedArray } from '../../data/npy.js';
import { onnxruntime, type OrtSession } from './ort.js';
import { floatValues } from './values.js';

type OrtTensor = InstanceType<ReturnType<typeof onnxruntime>['ort']['Tensor']>;

/**
 * The batch a session's data inputs are fixed at (their first dimension), or undefined when it is free.
 * Graph inputs the data does not feed (initializers older exporters list as inputs) do not count.
 */
export function sessionFixedBatch(session: OrtSession, fed: Iterable<string>): number | undefined {
  const names = new Set(fed);
  for (const meta of session.inputMetadata) {
    if (!names.has(meta.name) || !meta.isTensor) continue;
    const first = meta.shape[0];
    if (typeof first === 'number' && first > 0) return first;
  }
  return undefined;
}

/** Samples [start, end) as `rows` rows: the range itself, then copies of its last sample (padding for a fixed batch). */
export function paddedBatch(data: Dataset, start: number, end: number, rows: number): Map<string, InputArray> {
  const views = sliceBatch(data, start, end);
  const count = end - start;
  if (rows <= count) return views;
  const out = new Map<string, InputArray>();
  for (const [name, arr] of views) {
    const per = arr.data.length / count;
    const padded = allocTypedArray(arr.dtype, rows * per);
    const size = arr.data.BYTES_PER_ELEMENT;
    const bytes = new Uint8Array(padded.buffer, padded.byteOffset, padded.byteLength);
    bytes.set(new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength));
    const last = new Uint8Array(arr.data.buffer, arr.data.byteOffset + (count - 1) * per * size, per * size);
    for (let r = count; r < rows; r++) bytes.set(last, r * per * size);
    out.set(name, { dtype: arr.dtype, dims: [rows, ...arr.dims.slice(1)], data: padded });
  }
  return out;
}

/** onnxruntime tensors for samples [start, end), padded to `rows` rows. */
export function batchFeeds(data: Dataset, start: number, end: number, rows = end - start): Record<string, OrtTensor> {
  const { ort } = onnxruntime();
  const feeds: Record<string, OrtTensor> = {};
  for (const [name, arr] of paddedBatch(data, start, end, rows)) feeds[name] = new ort.Tensor(arr.dtype, arr.data as never, arr.dims);
  return feeds;
}

/** One fetched tensor of one batch as float32, padding rows dropped. */
export interface BatchValues {
  /** [samples of this batch, ...] */
  dims: number[];
  data: Float32Array;
}

/**
 * Run the data set through a session batch by batch, handing `onBatch` each fetched tensor as float32
 * (read by its real element type) for samples [first, first + count), valid only during the call. The
 * batch is `batch` samples, or the session's own when its inputs fix one: then the last batch is padded
 * with copies of its last sample and their outputs are dropped, so every sample counts exactly once.
 */
export async function runBatches(
  session: OrtSession,
  data: Dataset,
  batch: number,
  fetch: readonly string[],
  onBatch: (values: Map<string, BatchValues>, first: number, count: number) => void | Promise<void>,
  /** fed with every batch beside the data (parameters of an evaluation graph) */
  extraFeeds: Record<string, OrtTensor> = {},
): Promise<void> {
  const fixed = sessionFixedBatch(session, data.inputs.keys());
  const step = fixed ?? Math.max(1, batch);
  for (let start = 0; start < data.count; start += step) {
    const end = Math.min(data.count, start + step);
    const count = end - start;
    const result = await session.run({ ...batchFeeds(data, start, end, fixed ?? count), ...extraFeeds }, fetch as string[]);
    try {
      const values = new Map<string, BatchValues>();
      for (const name of fetch) {
        const t = result[name];
        const dims = [...(t.dims as readonly number[])];
        let v = floatValues(t);
        if (fixed !== undefined && dims[0] !== count) {
          v = v.subarray(0, (v.length / dims[0]) * count);
          dims[0] = count;
        }
        values.set(name, { dims, data: v });
      }
      await onBatch(values, start, count);
    } finally {
      for (const t of Object.values(result)) t.dispose();
    }
  }
}
