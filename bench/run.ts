/**
 * `npm run bench [-- --only mlp,resnet] [--quick] [--methods unstructured,2:4]`: time and peak memory of
 * every pipeline stage for every model we have, plus the speedup and accuracy change the run achieved,
 * printed as markdown and written to bench/results/latest.json so later changes can be compared.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { markdownTable } from 'markdown-table';
import { onnxruntimeVersion } from '../src/onnx/runtime/ort.js';
import { magnitudeMask } from '../src/prune/magnitude.js';
import { peakMeter, type PeakMeter } from '../src/measure/memory.js';
import { ensureScaleModels } from './exportScale.js';
import { benchRecovery, RECOVERY_METHODS, renderRecoveryTable, type RecoveryRow } from './recovery.js';
import { benchAllocation, renderAllocationTable, type AllocationRow } from './allocation.js';
import { benchConfig, outcome, stagesFor, type BenchModel, type BenchOptions, type Outcome, type StageContext } from './stages.js';
import { benchQuantize, quantizeModes, renderQuantizeTable, type QuantizeRow } from './quantize.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = path.join(ROOT, 'fixtures');
// models trained outside the repository (model.onnx, test.npz, calib.npz), benched too when named here:
// one such folder, or a folder of them
const REAL_WORLD_DIR = process.env.BENCH_REAL_WORLD;
const REAL_WORLD: string[] = !REAL_WORLD_DIR || !fs.existsSync(REAL_WORLD_DIR)
  ? []
  : fs.existsSync(path.join(REAL_WORLD_DIR, 'model.onnx'))
    ? [path.resolve(REAL_WORLD_DIR)]
    : fs.readdirSync(REAL_WORLD_DIR).sort().map((d) => path.resolve(REAL_WORLD_DIR, d)).filter((d) => fs.existsSync(path.join(d, 'model.onnx')));
const SCALE_DIR = path.join(FIXTURES, 'scale');
const SCALE_NAMES = ['resnet50', 'mobilenet_v2', 'densenet121', 'efficientnet_b0', 'vit_b_16', 'vgg16'];

// a full collection between stages keeps one stage's garbage out of the next one's peak
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface StageResult {
  name: string;
  /** wall-clock time */
  ms: number;
  /** user + system CPU time of the whole process (onnxruntime's threads included) */
  cpu_ms: number;
  /** peak RSS of the process during the stage */
  peak_rss_mb: number;
  /** that peak minus the RSS when the stage began: the memory the stage itself needed */
  extra_rss_mb: number;
}

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

interface RunResult extends Outcome {
  model: string;
  method: string;
  params: number | null;
  macs: number | null;
  stages: StageResult[];
  error?: string;
}

function parseArgs(argv: string[]): { only: string[]; quick: boolean; methods: string[]; gate: boolean; recoveries: string[]; quantize: boolean; allocation: boolean; scale: boolean; scaleRuns?: number } {
  const only: string[] = [];
  let quick = false;
  let scaleRuns: number | undefined;
  let gate = true;
  let quantize = true;
  let allocation = true;
  let scale = true;
  let recoveries = [...RECOVERY_METHODS];
  let methods = ['unstructured', '2:4', 'structured'];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') quick = true;
    else if (a === '--no-gate') gate = false;
    else if (a === '--no-allocation') allocation = false;
    else if (a === '--no-scale') scale = false;
    else if (a === '--only') only.push(...(argv[++i] ?? '').split(',').filter(Boolean));
    else if (a === '--methods') methods = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a === '--recovery') recoveries = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a === '--no-recovery') recoveries = [];
    else if (a === '--no-quantize') quantize = false;
    else if (a === '--scale-runs') {
      scaleRuns = Number(argv[++i]);
      if (!Number.isInteger(scaleRuns) || scaleRuns < 1) throw new Error(`--scale-runs takes a whole number of timed runs, not ${argv[i]}`);
    } else throw new Error(`unknown option ${a}; use --only a,b --quick --methods unstructured,2:4 --recovery none,reconstruct,auto --no-recovery --no-quantize --no-gate --no-allocation --no-scale --scale-runs N`);
  }
  return { only, quick, methods, gate, recoveries, quantize, allocation, scale, ...(scaleRuns ? { scaleRuns } : {}) };
}

function models(only: string[], notices: string[], withScale: boolean): BenchModel[] {
  const list: BenchModel[] = [];
  const test = path.join(FIXTURES, 'fmnist-test.npz');
  for (const name of ['mlp', 'cnn-bn', 'resnet', 'dsconv-concat', 'vit']) {
    const file = path.join(FIXTURES, `${name}.onnx`);
    if (fs.existsSync(file)) list.push({ name, file, data: test, calib: path.join(FIXTURES, 'fmnist-calib.npz') });
    else notices.push(`skipped fixture ${name}: fixtures/${name}.onnx not present`);
  }
  for (const dir of REAL_WORLD) list.push({ name: `real-world-${path.basename(dir)}`, file: path.join(dir, 'model.onnx'), data: path.join(dir, 'test.npz'), calib: path.join(dir, 'calib.npz') });
  if (REAL_WORLD_DIR && REAL_WORLD.length === 0) notices.push(`skipped the real-world models: no model.onnx in BENCH_REAL_WORLD=${REAL_WORLD_DIR} or its folders`);
  // a clean clone has none of them (large, gitignored): export what this run needs, or say how
  const scale = withScale ? SCALE_NAMES.filter((n) => !only.length || only.some((o) => n.includes(o))) : [];
  const exported = ensureScaleModels(ROOT, scale, (l) => process.stderr.write(`${l}\n`));
  if (exported.notice) notices.push(exported.notice);
  for (const name of scale) {
    const file = path.join(SCALE_DIR, `${name}.onnx`);
    if (fs.existsSync(file)) list.push({ name, file });
  }
  return only.length ? list.filter((m) => only.some((o) => m.name.includes(o))) : list;
}

async function runOne(model: BenchModel, method: string, options: BenchOptions, meter: PeakMeter, workDir: string): Promise<RunResult> {
  const ctx: StageContext = { model, method, config: benchConfig(method), options, workDir };
  const stages: StageResult[] = [];
  let error: string | undefined;
  for (const stage of stagesFor(method)) {
    gc();
    meter.reset();
    const rss0 = process.memoryUsage().rss;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    try {
      await stage.run(ctx);
    } catch (e) {
      error = `${stage.name}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
      break;
    }
    const peak = meter.peak();
    stages.push({ name: stage.name, ms: performance.now() - t0, cpu_ms: cpuMs(c0), peak_rss_mb: peak / 2 ** 20, extra_rss_mb: Math.max(0, peak - rss0) / 2 ** 20 });
  }
  if (ctx.prunedPath) fs.rmSync(ctx.prunedPath, { force: true });
  return { model: model.name, method, params: ctx.params ?? null, macs: ctx.macs ?? null, stages, ...outcome(ctx), ...(error ? { error } : {}) };
}

/** The global magnitude threshold over 25 M weights: kthSmallest on |w| plus the keep-mask, as pruning does it. */
function thresholdBench(meter: PeakMeter): { weights: number; ms: number; cpu_ms: number; peak_rss_mb: number; zeroed: number } {
  const n = 25_000_000;
  const w = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    w[i] = (s / 2 ** 32 - 0.5) * 0.1;
  }
  gc();
  meter.reset();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const [mask] = magnitudeMask([w], n / 2);
  const ms = performance.now() - t0;
  const cpu = cpuMs(c0);
  let zeroed = 0;
  for (let i = 0; i < n; i++) zeroed += 1 - mask[i];
  return { weights: n, ms, cpu_ms: cpu, peak_rss_mb: meter.peak() / 2 ** 20, zeroed };
}

const fmtMs = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`);
const fmtCount = (x: number | null): string => (x === null ? '—' : x >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(0)}k` : String(x));

function renderTable(results: RunResult[]): string {
  const stageNames: string[] = [];
  for (const r of results) for (const s of r.stages) if (!stageNames.includes(s.name)) stageNames.push(s.name);
  const rows = results.map((r) => {
    const cells = stageNames.map((n) => {
      const s = r.stages.find((x) => x.name === n);
      return s ? `${fmtMs(s.ms)} (cpu ${fmtMs(s.cpu_ms)}) · +${s.extra_rss_mb.toFixed(0)} MB` : '—';
    });
    const speed = r.speedup === null ? '—' : `${r.speedup.toFixed(2)}x${r.p_value !== null && r.p_value >= 0.05 ? ' (noise)' : ''}`;
    const acc =
      r.accuracy_dense !== null && r.accuracy_pruned !== null
        ? `${((r.accuracy_pruned - r.accuracy_dense) * 100).toFixed(1)} pt`
        : r.agreement !== null
          ? `agreement ${(r.agreement * 100).toFixed(1)}%`
          : '—';
    return [r.model, fmtCount(r.params), r.method, ...cells, speed, r.error ? `error: ${r.error}` : acc];
  });
  return markdownTable([['model', 'params', 'method', ...stageNames, 'speedup (p50, b=1)', 'accuracy change'], ...rows], { alignDelimiters: false });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const options: BenchOptions = args.quick
    ? { quick: true, evalSamples: 500, syntheticSamples: 8, warmup: 2, runs: 10, repeat: 3, planBatches: [1, 32] }
    : { quick: false, evalSamples: 2000, syntheticSamples: 32, warmup: 5, runs: 30, repeat: 3, planBatches: [1, 32] };
  // a batch-32 run of VGG16 takes seconds on one thread: --scale-runs trades the torchvision models'
  // timing rounds for a bench that finishes (1 warm-up, N runs, no best-of-3, INT8 plans timed at batch 1)
  const timing = (m: BenchModel): BenchOptions =>
    args.scaleRuns && path.dirname(m.file) === SCALE_DIR ? { ...options, warmup: 1, runs: args.scaleRuns, repeat: 1, planBatches: [1] } : options;
  const notices: string[] = [];
  const list = models(args.only, notices, args.scale);
  for (const n of notices) process.stderr.write(`bench: ${n}\n`);
  const meter = peakMeter();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-bench-'));
  const results: RunResult[] = [];
  const recovery: RecoveryRow[] = [];
  const quantized: QuantizeRow[] = [];
  const allocation: AllocationRow[] = [];
  try {
    for (const model of list) {
      for (const method of args.methods) {
        process.stderr.write(`bench: ${model.name} ${method}\n`);
        results.push(await runOne(model, method, timing(model), meter, workDir));
      }
    }
    // recovery: models with labelled data and a calibration set (fixtures, real-world)
    if (args.recoveries.length > 0) {
      for (const model of list) {
        if (!model.data || !model.calib || !fs.existsSync(model.calib)) continue;
        recovery.push(...(await benchRecovery({ ...model, calib: model.calib }, args.methods, args.recoveries, options, workDir)));
      }
    }
    // fp32 against INT8: models with labelled data and a calibration set, and the models without data
    // (torchvision), on seeded random inputs
    if (args.quantize) {
      for (const model of list) {
        if (model.data && !(model.calib && fs.existsSync(model.calib))) continue;
        for (const mode of quantizeModes(model.file)) {
          process.stderr.write(`bench: ${model.name} ${mode}\n`);
          quantized.push(await benchQuantize(model, mode, timing(model), workDir));
        }
      }
    }
    // allocation: every model structured pruning can cut, with the structured method benched
    if (args.allocation && args.methods.includes('structured')) {
      const topology = fs.readdirSync(path.join(FIXTURES, 'structured')).filter((f) => f.endsWith('.onnx')).sort()
        .map((f) => ({ name: `structured/${f.replace(/\.onnx$/, '')}`, file: path.join(FIXTURES, 'structured', f), data: path.join(FIXTURES, 'fmnist-test.npz') }))
        .filter((m) => !args.only.length || args.only.some((o) => m.name.includes(o)));
      for (const model of [...list, ...topology]) allocation.push(...(await benchAllocation(model, timing(model), workDir, (l) => process.stderr.write(`${l}\n`))));
    }
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  process.stderr.write('bench: global magnitude threshold over 25M weights\n');
  const threshold = thresholdBench(meter);

  const date = new Date().toISOString();
  const env = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'cpu'}), node ${process.version}, onnxruntime ${onnxruntimeVersion()}, ${process.platform}-${process.arch}`;
  const memoryNote =
    meter.method === 'linux-vmhwm'
      ? 'extra memory: peak RSS during the stage (Linux VmHWM, reset before each stage) minus RSS when it began; bench/results/latest.json also has the absolute peak'
      : 'RSS after the stage minus RSS before (no per-stage peak on this platform)';
  const md = [
    `Benchmarks, ${date}, ${env}. ${args.quick ? 'Quick mode: 500 labelled samples, 2 warm-up + 10 timed latency runs.' : 'Full mode: 2000 labelled samples, 5 warm-up + 30 timed latency runs.'}${args.scaleRuns ? ` Torchvision models (--scale-runs ${args.scaleRuns}): 1 warm-up + ${args.scaleRuns} timed runs, each sample one run, INT8 plans timed at batch 1 only.` : ''} Sparsity 0.5 for unstructured (global).`,
    `Each stage cell: wall time (CPU time of the process, onnxruntime threads included) · ${memoryNote}. Load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores at the end: on a shared machine wall time exceeds CPU time. Speedup: ratio of medians of interleaved batch-1 latency; "(noise)" when a Mann-Whitney test gives p >= 0.05. Models without labelled data (the torchvision scale models, random weights) report agreement with the dense model on seeded random inputs.`,
    renderTable(results),
    markdownTable(
      [
        ['global magnitude threshold', 'wall time (threshold + mask)', 'CPU time', 'peak RSS', 'zeroed'],
        [`${threshold.weights / 1e6}M float32 weights`, fmtMs(threshold.ms), fmtMs(threshold.cpu_ms), `${threshold.peak_rss_mb.toFixed(0)} MB`, String(threshold.zeroed)],
      ],
      { alignDelimiters: false },
    ),
    ...(recovery.length
      ? [
          `Recovery (calibration: 512 samples; unstructured 50% global, structured 30% of channels; top-1 on the evaluation set above). "recovery s": the kept steps' recovery.seconds as the ledger reports them; wall/CPU: the whole runRecovery call, temperature fit and rejected stages included (CPU counts onnxruntime's threads).`,
          renderRecoveryTable(recovery),
        ]
      : []),
    ...(quantized.some((r) => r.quality.kind === 'top1')
      ? [
          `INT8 (\`--quantize int8\`: static QDQ, min-max calibration on the model's calibration set, weight precision and float layers chosen by measurement as the pipeline does; \`--quantize dynamic\` where the model has MatMul layers; top-1 on the evaluation set above; speedup: ratio of medians of fp32 and INT8 latency interleaved in one pass, one intra-op thread, each sample the best of ${options.repeat} runs).`,
          renderQuantizeTable(quantized, 'top1'),
        ]
      : []),
    ...(quantized.some((r) => r.quality.kind === 'agreement')
      ? [
          `INT8 on the torchvision models (random weights, no data, so not top-1: the same step calibrated on 32 seeded random inputs, then judged on 64 other seeded inputs by how often INT8's top-1 class is fp32's and how many distinct classes fp32 predicts on them, the relative L2 error of the logits against fp32's, and the same error of the logits minus each class's mean over the inputs (the part that varies with the input); latency as above${args.scaleRuns ? `, with --scale-runs ${args.scaleRuns}: 1 warm-up and ${args.scaleRuns} timed runs, each sample one run, the INT8 plans timed at batch 1 only` : ''}).`,
          renderQuantizeTable(quantized, 'agreement'),
        ]
      : []),
    ...(allocation.length
      ? [
          `Structured allocation (one thread, each fraction of channels without recovery; speedup: ratio of medians of latency interleaved with dense; efficiency: speedup / (dense MACs / MACs kept)). "default": what \`--method structured\` ships without calibration data (global scope, kept counts on the widths measured to run fast); \`--round-to 1\`: the same allocation unrounded; \`--target-speedup 2x\`: allocated from the per-layer latency table for 2x at batch 1, corrected by measurement.`,
          renderAllocationTable(allocation),
        ]
      : []),
    ...(notices.length ? [notices.map((n) => `- ${n}`).join('\n')] : []),
  ].join('\n\n');
  process.stdout.write(md + '\n');
  const json = { date, environment: env, memory: meter.method, options: { ...options, only: args.only, methods: args.methods, recoveries: args.recoveries, ...(args.scaleRuns ? { scale_runs: args.scaleRuns } : {}) }, results, recovery, quantized, allocation, threshold, notices };
  const outDir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'latest.json'), JSON.stringify(json, null, 2) + '\n');
  // the gate's own bench (A/A false alarms, a really 10% slower head) is part of the suite; it takes
  // minutes, so --no-gate skips it
  if (args.gate) {
    process.argv = [process.argv[0], process.argv[1]];
    await import('./gate.js');
  }
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
