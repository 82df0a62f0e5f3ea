import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { quantileSorted } from 'simple-statistics';
import type { InputArray } from '../data/dataset.js';
import type { LatencyStat, RuntimeCost } from './step.js';
import { batchOf } from './latency.js';
import { peakMeter } from './memory.js';
import { onnxruntime, openSession } from '../onnx/runtime/ort.js';

/** Linux RAPL package-0 energy counter (microjoules); readable on many bare-metal x86 runners. */
export const RAPL_ENERGY = '/sys/class/powercap/intel-rapl:0/energy_uj';

/** Samples per second at the largest measured batch, from its p50; undefined with no latency. */
export function throughput(byBatch: readonly LatencyStat[]): { batch: number; samples_per_s: number } | undefined {
  if (byBatch.length === 0) return undefined;
  const largest = byBatch.reduce((a, b) => (b.batch > a.batch ? b : a));
  return { batch: largest.batch, samples_per_s: largest.batch / (largest.p50_ms / 1000) };
}

function readCounter(file: string): number | undefined {
  try {
    const v = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Energy per sample from the RAPL counter around `runs` inferences of `batch` samples; null with the
 * reason when the counter cannot be read (containers, VMs, non-Intel CPUs). It is the whole package's
 * energy, neighbours included, so it is only meaningful on a quiet, dedicated runner.
 */
export async function energyPerSample(run: () => Promise<void>, runs: number, batch: number, counter = RAPL_ENERGY): Promise<{ joules: number | null; note: string }> {
  const before = readCounter(counter);
  if (before === undefined) return { joules: null, note: `not available: ${counter} is not readable on this runner` };
  for (let i = 0; i < runs; i++) await run();
  const after = readCounter(counter);
  if (after === undefined || after < before) return { joules: null, note: 'not available: the RAPL counter wrapped or vanished during the measurement' };
  return { joules: (after - before) / 1e6 / (runs * batch), note: `RAPL package energy over ${runs} runs of batch ${batch} (includes other processes)` };
}

/**
 * Energy per sample on a GPU from NVML's board power, read by `nvidia-smi` every 100 ms while the runs
 * go: mean power x elapsed time / samples. null with the reason when nvidia-smi is absent or prints no
 * readings. It is the whole board's power, other processes on that GPU included.
 */
export async function gpuEnergyPerSample(run: () => Promise<void>, runs: number, batch: number, command = 'nvidia-smi'): Promise<{ joules: number | null; note: string }> {
  const watts: number[] = [];
  let failed = false;
  const child = spawn(command, ['--query-gpu=power.draw', '--format=csv,noheader,nounits', '-i', '0', '-lms', '100'], { stdio: ['ignore', 'pipe', 'ignore'] });
  child.on('error', () => (failed = true));
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) {
      const w = Number.parseFloat(line);
      if (Number.isFinite(w)) watts.push(w);
    }
  });
  // wait for the first reading, so the runs are covered from their start
  for (let waited = 0; watts.length === 0 && !failed && child.exitCode === null && waited < 2000; waited += 20) await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await run();
  const seconds = (performance.now() - t0) / 1000;
  child.kill();
  if (failed || watts.length === 0) return { joules: null, note: `not available: ${command} (NVML power) did not report on this runner` };
  const meanWatts = watts.reduce((a, b) => a + b, 0) / watts.length;
  return { joules: (meanWatts * seconds) / (runs * batch), note: `NVML board power via nvidia-smi (${watts.length} readings, mean ${meanWatts.toFixed(1)} W) over ${runs} runs of batch ${batch} (includes other processes on the GPU)` };
}

/** Model load time (median of 3 session creations), throughput, and energy where the runner exposes it. */
export async function measureRuntimeCost(artifact: string, byBatch: readonly LatencyStat[], source: Map<string, InputArray>, opts: { threads: number; provider?: 'cpu' | 'cuda' }): Promise<RuntimeCost> {
  const { ort } = onnxruntime();
  const loads: number[] = [];
  const meter = peakMeter();
  for (let i = 0; i < 3; i++) {
    // the last load is the one whose memory is measured: from just before its session exists
    const rssBefore = process.memoryUsage().rss;
    if (i === 2) meter.reset();
    const t0 = performance.now();
    const s = await openSession(artifact, opts);
    loads.push(performance.now() - t0);
    if (i < 2) await s.release();
    else {
      const batch = byBatch[0]?.batch ?? 1;
      const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
      for (const [name, arr] of batchOf(source, batch)) feeds[name] = new ort.Tensor(arr.dtype, arr.data as never, arr.dims);
      const measureEnergy = opts.provider === 'cuda' ? gpuEnergyPerSample : energyPerSample;
      const energy = await measureEnergy(async () => {
        const out = await s.run(feeds);
        for (const t of Object.values(out)) t.dispose();
      }, 20, batch);
      const largest = byBatch.reduce((a, b) => (b.batch > a.batch ? b : a), byBatch[0] ?? { batch: 1 });
      const bigFeeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
      for (const [name, arr] of batchOf(source, largest.batch)) bigFeeds[name] = new ort.Tensor(arr.dtype, arr.data as never, arr.dims);
      const out = await s.run(bigFeeds);
      for (const t of Object.values(out)) t.dispose();
      const peak = meter.method === 'linux-vmhwm' ? meter.peak() : null;
      await s.release();
      const tp = throughput(byBatch);
      return {
        load_ms: quantileSorted(loads.sort((a, b) => a - b), 0.5),
        ...(tp ? { throughput_batch: tp.batch, throughput_samples_per_s: tp.samples_per_s } : {}),
        energy_j_per_sample: energy.joules,
        energy_note: energy.note,
        peak_rss_bytes: peak,
        session_rss_bytes: peak === null ? null : Math.max(0, peak - rssBefore),
        memory_note: peak === null
          ? 'not available: the runner does not expose a resettable peak RSS (Linux /proc/self/clear_refs)'
          : `peak RSS of the measuring process while loading the model and running batch ${largest.batch} (Linux VmHWM)`,
      };
    }
  }
  throw new Error('unreachable');
}
