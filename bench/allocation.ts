/**
 * The allocation rows of `npm run bench`: per model and channel fraction, the structured prune the
 * default config ships (widths measured, checked on the whole model), the same without width rounding (`--round-to 1`), `--scope
 * layer`, and `--target-speedup 2x`, each timed interleaved with dense at batch 1 and 32 with one
 * thread: MACs kept, speedup (ratio of medians) and funnel efficiency (speedup / MAC reduction). One
 * more model, every group cut to one channel, measures the floor: the part of the dense time that no
 * channel count explains (session call, pooling, activations between layers). Against it each row also
 * gets the speedup its MACs could buy at most if the rest of the time fell with the MACs (Amdahl), and
 * what share of that it reached.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { markdownTable } from 'markdown-table';
import { median } from 'simple-statistics';
import { DEFAULT_CONFIG, type Config } from '../src/config/schema.js';
import { loadDataset, sliceBatch, type Dataset } from '../src/data/dataset.js';
import { cacheDir } from '../src/io/measureCache.js';
import { silentProgress } from '../src/io/progress.js';
import { measureInterleaved } from '../src/measure/latency.js';
import { modelCost } from '../src/onnx/flops.js';
import { loadModel, saveModel } from '../src/onnx/model.js';
import { modelInputs } from '../src/onnx/signature.js';
import { pruneForLatency } from '../src/pipeline/latencyTarget.js';
import { checkWidths } from '../src/pipeline/widthCheck.js';
import { pruneModel } from '../src/prune/pruneModel.js';
import { syntheticDataset, type BenchModel, type BenchOptions } from './stages.js';

export const ALLOCATION_BATCHES = [1, 32];
const FRACTIONS = [0.3, 0.5];
const TARGET = 2;
const FLOOR = 'floor: every group at 1 channel';

export interface AllocationRow {
  model: string;
  allocation: string;
  macs: number;
  speedup: number[];
  efficiency: number[];
  /** measured speedup / ceilingSpeedup at the row's MACs, per batch */
  ofCeiling: number[];
  error?: string;
}

/**
 * The speedup that keeping `macs` of the dense MACs can buy at most: the dense time splits into a part
 * that no channel count changes and a part proportional to MACs, read off the floor model (every group at
 * one channel: `floorMacs` of the MACs kept, `floorSpeedup` over dense).
 */
export function ceilingSpeedup(macs: number, floorMacs: number, floorSpeedup: number): number {
  const fixed = Math.min(1, Math.max(0, (1 / floorSpeedup - floorMacs) / (1 - floorMacs)));
  return 1 / (fixed + (1 - fixed) * macs);
}

function config(overrides: Partial<Config>, options: BenchOptions, batches: number[]): Config {
  return {
    ...DEFAULT_CONFIG,
    method: 'structured',
    recovery: 'none',
    batchSizes: batches,
    latency: { ...DEFAULT_CONFIG.latency, threads: 1, warmup: options.warmup, runs: options.runs, repeat: options.repeat },
    ...overrides,
  };
}

/** The batch sizes a model can run: 1 and 32, or the one its input fixes (the zoo's MNIST-8: 1, vit-tiny: 2). */
function batchesOf(dense: import('../src/onnx/proto/onnx_pb.js').ModelProto, file: string): number[] {
  const fixed = modelInputs(dense, file)[0]?.dims[0];
  return typeof fixed === 'number' ? [fixed] : ALLOCATION_BATCHES;
}

export async function benchAllocation(model: BenchModel, options: BenchOptions, workDir: string, onProgress: (line: string) => void): Promise<AllocationRow[]> {
  try {
    return await benchAllocationOf(model, options, workDir, onProgress);
  } catch (e) {
    return [{ model: model.name, allocation: 'all', macs: NaN, speedup: [], efficiency: [], ofCeiling: [], error: e instanceof Error ? e.message.split('\n')[0] : String(e) }];
  }
}

async function benchAllocationOf(model: BenchModel, options: BenchOptions, workDir: string, onProgress: (line: string) => void): Promise<AllocationRow[]> {
  const dense = loadModel(model.file).proto;
  const batches = batchesOf(dense, model.file);
  const data: Dataset = model.data ? loadDataset(model.data, modelInputs(dense, model.file), { requireLabels: false, modelPath: model.file }) : syntheticDataset(dense, model.file, 32);
  const hardware = { batches, threads: 1, cacheDir: cacheDir() };
  const ctx = { modelPath: model.file, progress: silentProgress, hardware };
  const variants: { label: string; file: string }[] = [];
  const rows: AllocationRow[] = [];
  const add = async (label: string, run: () => Promise<{ model: import('../src/onnx/proto/onnx_pb.js').ModelProto }>): Promise<void> => {
    onProgress(`bench: allocation ${model.name} ${label}`);
    try {
      const out = await run();
      const file = path.join(workDir, `${model.name}-${variants.length}.onnx`);
      saveModel(out.model, file);
      variants.push({ label, file });
    } catch (e) {
      rows.push({ model: model.name, allocation: label, macs: NaN, speedup: [], efficiency: [], ofCeiling: [], error: e instanceof Error ? e.message.split('\n')[0] : String(e) });
    }
  };
  for (const f of FRACTIONS) {
    const pct = `${f * 100}%`;
    // what `run` ships: measured widths are checked on the whole model
    const asRun = async (c: Config) => checkWidths(await pruneModel(dense, c, ctx), dense, c, { ...ctx, data, dir: workDir, cacheDir: cacheDir(), provider: 'cpu' });
    await add(`default ${pct} (global, measured widths)`, () => asRun(config({ sparsity: f, scope: 'global' }, options, batches)));
    await add(`${pct}, --round-to 1`, () => pruneModel(dense, config({ sparsity: f, scope: 'global', roundTo: 1 }, options, batches), ctx));
    await add(`${pct}, --scope layer`, () => asRun(config({ sparsity: f, scope: 'layer' }, options, batches)));
  }
  const targetDir = path.join(workDir, `${model.name}-target`);
  await add(`--target-speedup ${TARGET}x (b=${batches[0]})`, async () => (await pruneForLatency(dense, model.file, config({ targetSpeedup: TARGET }, options, batches), { ...ctx, data, stepsDir: targetDir, provider: 'cpu' })).pruned);
  fs.rmSync(targetDir, { recursive: true, force: true });
  await add(FLOOR, () => pruneModel(dense, config({ sparsity: 1, scope: 'layer', roundTo: 1 }, options, batches), ctx));
  if (variants.length === 0) return rows;
  onProgress(`bench: allocation ${model.name}: latency of ${variants.length + 1} models interleaved`);
  const source = sliceBatch(data, 0, Math.min(data.count, Math.max(...batches)));
  const files = [model.file, ...variants.map((v) => v.file)];
  const measured = await measureInterleaved(files, source, { warmup: options.warmup, runs: options.runs, threads: 1, repeat: options.repeat, batchSizes: batches });
  // columns per ALLOCATION_BATCHES; a model with a fixed batch fills the column of its batch (or the first)
  const column = (b: number): number => (batches.length === 1 ? (ALLOCATION_BATCHES.includes(batches[0]) ? ALLOCATION_BATCHES.indexOf(batches[0]) : 0) : b);
  const samples = measured.map((m) => ALLOCATION_BATCHES.map((_, c) => m[batches.findIndex((_, b) => column(b) === c)] ?? []));
  const denseMacs = modelCost(dense).macs;
  const measuredRows = variants.map((v, i) => {
    const macs = modelCost(loadModel(v.file).proto).macs / denseMacs;
    const speedup = ALLOCATION_BATCHES.map((_, b) => (samples[0][b].length ? median(samples[0][b]) / median(samples[i + 1][b]) : NaN));
    fs.rmSync(v.file, { force: true });
    return { model: model.name, allocation: v.label, macs, speedup, efficiency: speedup.map((s) => s * macs), ofCeiling: [] as number[] };
  });
  const floor = measuredRows.find((r) => r.allocation === FLOOR);
  for (const r of measuredRows) r.ofCeiling = floor ? r.speedup.map((s, b) => s / ceilingSpeedup(r.macs, floor.macs, floor.speedup[b])) : r.speedup.map(() => NaN);
  return [...rows, ...measuredRows];
}

export function renderAllocationTable(rows: readonly AllocationRow[]): string {
  const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : '—');
  const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(0)}%` : '—');
  return markdownTable(
    [
      ['model', 'allocation', 'MACs kept', ...ALLOCATION_BATCHES.map((b) => `speedup b=${b}`), ...ALLOCATION_BATCHES.map((b) => `efficiency b=${b}`), ...ALLOCATION_BATCHES.map((b) => `of ceiling b=${b}`)],
      ...rows.map((r) => (r.error ? [r.model, r.allocation, `error: ${r.error}`, ...ALLOCATION_BATCHES.flatMap(() => ['—', '—', '—'])] : [r.model, r.allocation, pct(r.macs), ...r.speedup.map(x), ...r.efficiency.map(pct), ...r.ofCeiling.map(pct)])),
    ],
    { alignDelimiters: false },
  );
}
