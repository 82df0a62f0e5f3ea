/**
 * One model through the pipeline's stages in this process, printing one JSON line per stage with its
 * wall time and the process's peak RSS so far. bench/scale.ts runs it once per model in a child
 * process, so every model's peak is its own.
 *
 *   node --import tsx bench/scaleStages.ts model.onnx
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Dataset } from '../src/data/dataset.js';
import { evaluateClassifier } from '../src/onnx/runtime/classifier.js';
import { measureInterleaved } from '../src/measure/latency.js';
import { openSession } from '../src/onnx/runtime/ort.js';
import { loadModel, saveModel } from '../src/onnx/model.js';
import { GraphIndex } from '../src/onnx/graph.js';
import { preflightModel } from '../src/onnx/preflight.js';
import { modelInputs } from '../src/onnx/signature.js';
import { tensorToFloat32 } from '../src/onnx/tensor.js';
import { magnitudeMask, magnitudePrune } from '../src/prune/magnitude.js';
import { prunableWeights } from '../src/prune/prunable.js';

const SAMPLES = 64;
const file = process.argv[2];
const MB = 2 ** 20;

let cpuMark = process.cpuUsage();

/** Wall time and CPU time (user + system, all threads: onnxruntime's too) since the stage began. */
function report(stage: string, t0: number, extra: Record<string, number> = {}): void {
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpuMark);
  cpuMark = process.cpuUsage();
  extra = { cpuMs: (cpu.user + cpu.system) / 1000, ...extra };
  // resourceUsage().maxRSS is in kB and never goes down: the peak up to the end of this stage
  const peak = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ stage, ms, peakMB: peak / MB, rssMB: process.memoryUsage().rss / MB, ...extra }) + '\n');
}

let t = performance.now();
cpuMark = process.cpuUsage();
const model = loadModel(file);
report('load', t, { fileMB: model.bytes / MB });

t = performance.now();
cpuMark = process.cpuUsage();
preflightModel(model.proto, file);
report('preflight', t);

const weights = prunableWeights(model.proto, { exclude: [], keepFirstLayer: false, keepLastLayer: false });
const index = new GraphIndex(model.proto.graph!);
const values = weights.map((w) => tensorToFloat32(index.initializers.get(w.initializer)!));
const total = values.reduce((n, v) => n + v.length, 0);
t = performance.now();
cpuMark = process.cpuUsage();
magnitudeMask(values, Math.round(0.5 * total));
report('global threshold', t, { weights: total });
values.length = 0;

t = performance.now();
cpuMark = process.cpuUsage();
const pruned = magnitudePrune(model.proto, weights, 0.5, 'global');
report('prune 0.5', t);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-scale-'));
const out = path.join(dir, 'pruned.onnx');
t = performance.now();
cpuMark = process.cpuUsage();
saveModel(pruned.model, out);
report('save', t);

const [input] = modelInputs(model.proto, file);
const dims = input.dims.map((d, i) => (i === 0 ? SAMPLES : typeof d === 'number' ? d : 1));
const per = dims.slice(1).reduce((a, d) => a * d, 1);
const x = new Float32Array(SAMPLES * per);
for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 12.9898) * 0.5;
const data: Dataset = {
  path: 'random',
  count: SAMPLES,
  inputs: new Map([[input.name, { dtype: 'float32', dims, data: x }]]),
  labels: Int32Array.from({ length: SAMPLES }, (_, i) => i % 10),
};
t = performance.now();
cpuMark = process.cpuUsage();
const session = await openSession(out, { threads: 0 });
try {
  await evaluateClassifier(session, data, { batchSize: 16, modelPath: out });
} finally {
  await session.release();
}
report(`evaluate ${SAMPLES}`, t, { dataMB: x.byteLength / MB });

t = performance.now();
cpuMark = process.cpuUsage();
const one = new Map([[input.name, { dtype: 'float32' as const, dims: [1, ...dims.slice(1)], data: x.subarray(0, per) }]]);
await measureInterleaved([out], one, { batchSizes: [1], warmup: 1, runs: 5, threads: 0 });
report('latency b1 x6', t);
fs.rmSync(dir, { recursive: true, force: true });
