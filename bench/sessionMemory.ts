/**
 * Memory and time of one onnxruntime session running a few batches, in a fresh process: what decided
 * that sessions keep onnxruntime's CPU arena (docs/benchmarks.md, "What bounds memory and time").
 *
 *   node --import tsx bench/sessionMemory.ts MODEL [--batch 55] [--runs 3] [--no-arena] [--opt basic|all] [--from path|bytes]
 *
 * Prints one JSON line: peaks in MB above the process's RSS before the session (VmHWM, so native
 * allocations count) after creating it and after the runs, and the seconds the runs took.
 */
import * as fs from 'node:fs';
import { peakMeter } from '../src/measure/memory.js';
import { onnxruntime } from '../src/onnx/runtime/ort.js';

const [model, ...rest] = process.argv.slice(2);
if (!model) throw new Error('usage: bench/sessionMemory.ts MODEL [--batch N] [--runs N] [--no-arena] [--opt basic|all] [--from path|bytes]');
const opt = (name: string, fallback: string): string => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : fallback;
};
const batch = Number(opt('--batch', '55'));
const runs = Number(opt('--runs', '3'));
const arena = !rest.includes('--no-arena');
const level = opt('--opt', 'basic') as 'basic' | 'all';
const from = opt('--from', 'path');

const MB = 2 ** 20;
const meter = peakMeter();
if (meter.method !== 'linux-vmhwm') throw new Error('bench/sessionMemory.ts needs Linux /proc/self/clear_refs for peaks');

const { ort } = onnxruntime();
let bytes: Uint8Array | undefined = from === 'bytes' ? fs.readFileSync(model) : undefined;
meter.reset();
const before = process.memoryUsage().rss;
const options = { executionProviders: ['cpu'], graphOptimizationLevel: level, enableCpuMemArena: arena, intraOpNumThreads: 0, interOpNumThreads: 1 };
const session = bytes ? await ort.InferenceSession.create(bytes, options) : await ort.InferenceSession.create(model, options);
bytes = undefined;
const createdPeak = meter.peak();
const meta = session.inputMetadata[0] as { isTensor: boolean; shape?: readonly (number | string)[] };
const dims = (meta.shape ?? []).map((d, i) => (i === 0 ? batch : typeof d === 'number' ? d : 1));
const x = new Float32Array(dims.reduce((a, d) => a * d, 1)).fill(0.1);
const t0 = performance.now();
for (let k = 0; k < runs; k++) {
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, dims) });
  for (const t of Object.values(out)) t.dispose();
}
const seconds = (performance.now() - t0) / 1000;
const runPeak = meter.peak();
const rssAfter = process.memoryUsage().rss;
await session.release();
process.stdout.write(
  JSON.stringify({ model, batch, runs, arena, opt: level, from, createPeakMB: Math.round((createdPeak - before) / MB), runPeakMB: Math.round((runPeak - before) / MB), rssAfterMB: Math.round((rssAfter - before) / MB), seconds: Number(seconds.toFixed(1)) }) + '\n',
);
