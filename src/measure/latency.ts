import { quantileSorted } from 'simple-statistics';
import type { InputArray } from '../data/dataset.js';
import type { LatencyStat } from './step.js';
import { onnxruntime, openSession, type OrtSession } from '../onnx/runtime/ort.js';
import { bootstrapInterval, meanInterval, quantileAt, quantileInterval } from './stats/bootstrap.js';
import type { SequentialTest } from './stats/sequential.js';

export interface LatencyOptions {
  batchSizes: readonly number[];
  warmup: number;
  /** timed rounds at least; more when the adaptive stop asks for them */
  runs: number;
  threads: number;
  /**
   * each timed sample is the fastest of this many back-to-back runs (default 1): on a shared runner
   * a preempted run is many times slower, and best-of-k keeps those spikes out of the median
   */
  repeat?: number;
  /**
   * adaptive stop: after `runs` rounds keep sampling until the relative half-width of every model's
   * p50 ratio to the first model (one model: its p50) is at most this, or `maxSeconds` is used up; 0 = off
   */
  targetRelCi?: number;
  /** time cap for all batch sizes together, seconds; 0 = no cap */
  maxSeconds?: number;
  confidence?: number;
  provider?: 'cpu' | 'cuda';
  /**
   * at the first batch size, the first model (the reference) and the last (the one judged) are sampled
   * until every one of these tests has decided (their own checkpoints and caps replace `runs`,
   * `targetRelCi` and `maxSeconds` there)
   */
  sequential?: readonly SequentialTest[];
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

/** p50/p95/p99/mean of timed runs, each with a bootstrap interval when `confidence` is given. */
export function latencyStat(batch: number, samplesMs: number[], confidence?: number): LatencyStat {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const stat: LatencyStat = { batch, p50_ms: quantileSorted(sorted, 0.5), p95_ms: quantileSorted(sorted, 0.95), runs: sorted.length };
  if (confidence === undefined) return stat;
  stat.p99_ms = quantileSorted(sorted, 0.99);
  stat.mean_ms = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  const opts = { confidence, resamples: 500 };
  stat.p50_ci = quantileInterval(sorted, 0.5, opts);
  stat.p95_ci = quantileInterval(sorted, 0.95, opts);
  stat.p99_ci = quantileInterval(sorted, 0.99, opts);
  stat.mean_ci = meanInterval(sorted, opts);
  return stat;
}

/**
 * median(a) / median(b) over paired rounds, with a bootstrap interval that resamples whole rounds so
 * both models keep the conditions (neighbours, clocks) they were measured under together.
 */
export function pairedMedianRatio(a: readonly number[], b: readonly number[], confidence = 0.95, resamples = 500): { ratio: number; ci: [number, number] } {
  const n = Math.min(a.length, b.length);
  const sa = new Float64Array(n);
  const sb = new Float64Array(n);
  const median = (xs: readonly number[]): number => quantileSorted([...xs.slice(0, n)].sort((x, y) => x - y), 0.5);
  const ratio = median(a) / median(b);
  const ci = bootstrapInterval(n, (idx) => quantileAt(a, idx, 0.5, sa) / quantileAt(b, idx, 0.5, sb), { confidence, resamples });
  return { ratio, ci };
}

/** Half the interval width relative to the estimate: 0.02 means "± 2%". */
export function relativeHalfWidth(estimate: number, ci: readonly [number, number]): number {
  return (ci[1] - ci[0]) / 2 / Math.abs(estimate);
}

const STABLE_WINDOW = 5;

/** The last window of warm-up times has the same median as the one before, within 10%. */
function settled(times: readonly number[]): boolean {
  if (times.length < 2 * STABLE_WINDOW) return false;
  const med = (xs: number[]) => quantileSorted(xs.sort((a, b) => a - b), 0.5);
  const last = med(times.slice(-STABLE_WINDOW));
  const before = med(times.slice(-2 * STABLE_WINDOW, -STABLE_WINDOW));
  return Math.abs(last / before - 1) <= 0.1;
}

/** Whether samples of every model are precise enough for the adaptive stop. */
function preciseEnough(perModel: number[][], target: number, confidence: number): boolean {
  if (perModel.length === 1) {
    const s = perModel[0];
    return relativeHalfWidth(quantileSorted([...s].sort((x, y) => x - y), 0.5), quantileInterval(s, 0.5, { confidence, resamples: 200 })) <= target;
  }
  for (let i = 1; i < perModel.length; i++) {
    const r = pairedMedianRatio(perModel[i], perModel[0], confidence, 200);
    if (!(relativeHalfWidth(r.ratio, r.ci) <= target)) return false;
  }
  return true;
}

/**
 * Latency of several models on the same inputs, measured interleaved: every round runs each model once,
 * in an order that alternates between rounds, so drift on a noisy runner (thermal, neighbours) hits all
 * models alike instead of whichever happened to run last. Returns raw samples per model per batch.
 */
export async function measureInterleaved(modelPaths: readonly string[], source: Map<string, InputArray>, opts: LatencyOptions, onProgress?: (done: number, total: number) => void): Promise<number[][][]> {
  const { ort } = onnxruntime();
  let sessions: OrtSession[] = [];
  const samples: number[][][] = modelPaths.map(() => opts.batchSizes.map(() => []));
  const total = opts.batchSizes.length * (opts.warmup + opts.runs);
  const adaptive = (opts.targetRelCi ?? 0) > 0;
  const capMs = (opts.maxSeconds ?? 0) > 0 ? (opts.maxSeconds! * 1000) / opts.batchSizes.length : Infinity;
  let done = 0;

  /** Warm up, then time rounds at batch `b` into `into[model]` until the fixed runs, the adaptive stop or every test in `sequential` says stop. */
  async function sampleBatch(b: number, into: number[][], sequential: readonly SequentialTest[] | undefined): Promise<void> {
    const started = performance.now();
    const inputs = batchOf(source, opts.batchSizes[b]);
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
    for (const [name, arr] of inputs) feeds[name] = new ort.Tensor(arr.dtype, arr.data as never, arr.dims);
    // warm-up until stable: at least `warmup` rounds, then until every model's median of the last
    // 5 warm-up runs is within 10% of the 5 before (caches, allocator and clocks settled), capped
    const warm: number[][] = sessions.map(() => []);
    const warmCap = Math.max(5 * opts.warmup, 2 * STABLE_WINDOW);
    let warming = opts.warmup > 0;
    let timedStart = performance.now();
    let warmRounds = 0;
    let timed = 0;
    const judged = into.length - 1;
    for (let r = 0; ; r++) {
      if (!warming && sequential) {
        const elapsed = performance.now() - timedStart;
        // every test sees every round: each keeps its own looks, and one that decided stays decided
        const decided = sequential.map((t) => t.check(into[0], into[judged], elapsed));
        if (decided.every(Boolean)) break;
      } else if (!warming && timed >= opts.runs) {
        // fixed runs, or the adaptive stop: checked every 10 rounds, since a bootstrap costs time too
        if (!adaptive || performance.now() - started > capMs) break;
        if ((timed - opts.runs) % 10 === 0 && preciseEnough(into, opts.targetRelCi!, opts.confidence ?? 0.95)) break;
      }
      const order = sessions.map((_, i) => i);
      if (r % 2 === 1) order.reverse();
      for (const i of order) {
        let dt = Infinity;
        for (let k = 0; k < (opts.repeat ?? 1); k++) {
          const t0 = performance.now();
          const out = await sessions[i].run(feeds);
          dt = Math.min(dt, performance.now() - t0);
          for (const t of Object.values(out)) t.dispose();
        }
        if (warming) warm[i].push(dt);
        else into[i].push(dt);
      }
      if (warming) {
        warmRounds++;
        if (warmRounds >= opts.warmup && (warm.every(settled) || warmRounds >= warmCap)) {
          warming = false;
          timedStart = performance.now();
        }
      } else timed++;
      onProgress?.(Math.min(++done, total), total);
    }
  }

  async function open(order: readonly number[]): Promise<void> {
    const opened: OrtSession[] = [];
    sessions = opened;
    // interleaved sessions must not take cores from each other between their runs
    const spinning = modelPaths.length === 1;
    for (const i of order) opened[i] = await openSession(modelPaths[i], { threads: opts.threads, provider: opts.provider, spinning });
  }

  try {
    // opened inside the try: when the second model fails to load, the first session is still released
    await open(modelPaths.map((_, i) => i));
    for (let b = 0; b < opts.batchSizes.length; b++) {
      const sequential = b === 0 && sessions.length >= 2 && opts.sequential?.length ? opts.sequential : undefined;
      await sampleBatch(b, samples.map((m) => m[b]), sequential);
      const unconfirmed = sequential?.filter((t) => t.needsReplication()) ?? [];
      if (unconfirmed.length === 0) continue;
      // a fail must hold on new sessions, opened in the other order: a speed that belongs to one
      // session for its whole life is the same in every round of the pair and passes the paired test
      for (const s of sessions) await s.release();
      sessions = [];
      await open(modelPaths.map((_, i) => modelPaths.length - 1 - i));
      const again = unconfirmed.map((t) => t.fresh());
      await sampleBatch(b, modelPaths.map(() => []), again);
      unconfirmed.forEach((t, i) => t.replicate(again[i].result()!));
    }
  } finally {
    for (const s of sessions) if (s) await s.release();
  }
  return samples;
}
