import { quantileSorted } from 'simple-statistics';
import type { InputArray } from '../data/dataset.js';
import type { LatencyStat } from '../ledger/types.js';
import { onnxruntime, openSession, type OrtSession } from './ort.js';

export interface LatencyOptions {
  batchSizes: readonly number[];
  warmup: number;
  runs: number;
  threads: number;
}

/** A batch of real inputs of exactly `batch` rows, repeating the source rows when it has fewer. */
export function batchOf(source: Map<string, InputArray>, batch: number): Map<string, InputArray> {
  const out = new Map<string, InputArray>();
  for (const [name, arr] of source) {
    const rows = arr.dims[0];
    const rowSize = arr.data.length / rows;
    const Ctor = arr.data.constructor as new (n: number) => InputArray['data'];
    const data = new Ctor(batch * rowSize);
    for (let r = 0; r < batch; r++) (data as Float32Array).set((arr.data as Float32Array).subarray((r % rows) * rowSize, (r % rows + 1) * rowSize), r * rowSize);
    out.set(name, { dtype: arr.dtype, dims: [batch, ...arr.dims.slice(1)], data });
  }
  return out;
}

export function latencyStat(batch: number, samplesMs: number[]): LatencyStat {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { batch, p50_ms: quantileSorted(sorted, 0.5), p95_ms: quantileSorted(sorted, 0.95), runs: sorted.length };
}

/**
 * Latency of several models on the same inputs, measured interleaved: every round runs each model once,
 * in an order that alternates between rounds, so drift on a noisy runner (thermal, neighbours) hits all
 * models alike instead of whichever happened to run last. Returns raw samples per model per batch.
 */
export async function measureInterleaved(modelPaths: readonly string[], source: Map<string, InputArray>, opts: LatencyOptions, onProgress?: (done: number, total: number) => void): Promise<number[][][]> {
  const { ort } = onnxruntime();
  const sessions: OrtSession[] = [];
  const samples: number[][][] = modelPaths.map(() => opts.batchSizes.map(() => []));
  const total = opts.batchSizes.length * (opts.warmup + opts.runs);
  let done = 0;
  try {
    // opened inside the try: when the second model fails to load, the first session is still released
    for (const p of modelPaths) sessions.push(await openSession(p, { threads: opts.threads }));
    for (let b = 0; b < opts.batchSizes.length; b++) {
      const inputs = batchOf(source, opts.batchSizes[b]);
      const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
      for (const [name, arr] of inputs) feeds[name] = new ort.Tensor(arr.dtype, arr.data as never, arr.dims);
      for (let r = 0; r < opts.warmup + opts.runs; r++) {
        const order = sessions.map((_, i) => i);
        if (r % 2 === 1) order.reverse();
        for (const i of order) {
          const t0 = performance.now();
          const out = await sessions[i].run(feeds);
          const dt = performance.now() - t0;
          for (const t of Object.values(out)) t.dispose();
          if (r >= opts.warmup) samples[i][b].push(dt);
        }
        onProgress?.(++done, total);
      }
    }
  } finally {
    for (const s of sessions) await s.release();
  }
  return samples;
}
