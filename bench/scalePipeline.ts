/**
 * The whole `run` pipeline (runPipeline, what the CLI's `run` calls) on one model in this process, with
 * the time and peak RSS of each of its stages. A stage is the span between two of the pipeline's stage
 * events (Progress.stage), so nothing in src/ needs a hook of its own: "prune MODEL" covers pruning,
 * saving and the first calibration score, "recovery: ..." each recovery stage (reconstruction with
 * BatchNorm re-estimation, distillation, a command, each recovery round), "evaluate NAME" one step's
 * evaluation, "latency" the interleaved latency, and the tail the runtime cost. The peak is the kernel's
 * VmHWM, reset through /proc/self/clear_refs at each boundary, so it is the true peak of that stage
 * (onnxruntime's native memory included).
 * bench/scale.ts runs it once per model and method in a child process and makes the data file.
 *
 *   node --import tsx bench/scalePipeline.ts model.onnx data.npz OUT --method structured [--calib calib.npz] [--runs 3]
 *
 * Prints one JSON line per stage, then a summary line { total: true, peakMB, ... }.
 */
import * as fs from 'node:fs';
import { DEFAULT_CONFIG, type Config } from '../src/config/schema.js';
import { peakMeter } from '../src/measure/memory.js';
import { stageLine, type Progress } from '../src/io/progress.js';
import { runPipeline } from '../src/pipeline/run.js';

const MB = 2 ** 20;
const [model, data, out, ...rest] = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const method = (opt('--method') ?? 'unstructured') as Config['method'];
const calib = opt('--calib');
const runs = Number(opt('--runs') ?? 3);

const meter = peakMeter();
if (meter.method !== 'linux-vmhwm') throw new Error('bench/scalePipeline.ts needs Linux /proc/self/clear_refs for per-stage peaks');
let overall = 0;
let stage = 'load, validate';
let t0 = performance.now();
let cpu0 = process.cpuUsage();
meter.reset();

function close(next: string): void {
  const peak = meter.peak();
  overall = Math.max(overall, peak);
  const cpu = process.cpuUsage(cpu0);
  const line = { stage, ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, peakMB: peak / MB, rssAfterMB: process.memoryUsage().rss / MB };
  process.stdout.write(JSON.stringify(line) + '\n');
  stage = next;
  meter.reset();
  t0 = performance.now();
  cpu0 = process.cpuUsage();
}

const progress: Progress = {
  stage(e) {
    // the pruning stage is named for what it does, not the note's wording about the target
    close(e.kind === 'prune' ? `prune ${e.model}` : stageLine(e).replace(/ on the calibration set$/, ''));
  },
  note(m) {
    process.stderr.write(`note: ${m}\n`);
  },
  update() {},
  stop() {},
  output: (text) => process.stderr.write(text),
};

const config: Config = {
  ...DEFAULT_CONFIG,
  method,
  sparsity: 0.5,
  // the scale numbers in docs/benchmarks.md are global; scope auto would add sensitivity curves of every group
  scope: 'global',
  recovery: calib ? 'auto' : 'none',
  batchSizes: [1],
  latency: { ...DEFAULT_CONFIG.latency, warmup: 1, runs, maxSeconds: 60 },
  evalBatchSize: 32,
};
const t = performance.now();
const result = await runPipeline({ model, data, ...(calib ? { calib } : {}), shifts: [], out, config, budgets: [] }, progress);
close('end');
const step = result.model.steps.at(-1)!;
process.stdout.write(
  JSON.stringify({
    total: true,
    ms: performance.now() - t,
    peakMB: overall / MB,
    fileMB: fs.statSync(model).size / MB,
    dataMB: fs.statSync(data).size / MB,
    ...(calib ? { calibMB: fs.statSync(calib).size / MB } : {}),
    notes: result.model.notes ?? [],
    descriptions: result.model.steps.map((s) => s.description),
    steps: result.model.steps.map((s) => s.name),
    sparsity: step.sparsity,
    params: step.params,
  }) + '\n',
);
