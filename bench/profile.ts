/**
 * Where one model's time goes in onnxruntime: each kernel onnxruntime ran (after its own graph
 * optimisations, as the measurements open the model) with its mean time per run, from onnxruntime's
 * profiler. A probe for reading a speed result, not a benchmark: one model, one process, no interleaving.
 *
 *   node --import tsx bench/profile.ts MODEL [--batch 32] [--runs 100] [--threads 1] [--top 30]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { onnxruntime } from '../src/onnx/runtime/ort.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { batch: { type: 'string', default: '32' }, runs: { type: 'string', default: '100' }, threads: { type: 'string', default: '1' }, top: { type: 'string', default: '30' } },
});
const file = positionals[0];
if (!file) {
  console.error('usage: node --import tsx bench/profile.ts MODEL [--batch 32] [--runs 100] [--threads 1] [--top 30]');
  process.exit(2);
}
if (!fs.existsSync(file)) {
  console.error(`${file}: no such file; pass the path of an .onnx model`);
  process.exit(2);
}
const batch = Number(values.batch);
const runs = Number(values.runs);
const { ort } = onnxruntime();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-profile-'));
try {
  const session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: Number(values.threads), enableProfiling: true, profileFilePrefix: path.join(dir, 'profile') });
  const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
  // seeded inputs: the kernels' time does not depend on the values, and a rerun feeds the same ones
  let seed = 1;
  const next = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (const meta of session.inputMetadata) {
    if (!meta.isTensor) throw new Error(`${file}: input '${meta.name}' is not a tensor`);
    const dims = meta.shape.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? batch : 1));
    const size = dims.reduce((a, b) => a * b, 1);
    feeds[meta.name] = new ort.Tensor('float32', Float32Array.from({ length: size }, next), dims);
  }
  for (let i = 0; i < runs; i++) await session.run(feeds);
  await session.release();
  const profile = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
  if (!profile) throw new Error('onnxruntime wrote no profile');
  const events = JSON.parse(fs.readFileSync(path.join(dir, profile), 'utf8')) as { cat: string; name: string; dur: number; args: { op_name?: string } }[];
  const byNode = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const key = `${e.args.op_name ?? '?'}  ${e.name.slice(0, -'_kernel_time'.length)}`;
    byNode.set(key, (byNode.get(key) ?? 0) + e.dur);
  }
  const rows = [...byNode].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, [, us]) => s + us, 0);
  console.log(`${path.basename(file)}: batch ${batch}, ${runs} runs, ${values.threads} thread(s); mean µs per run per kernel`);
  for (const [name, us] of rows.slice(0, Number(values.top))) console.log(`${(us / runs).toFixed(1).padStart(9)}  ${name}`);
  console.log(`${(total / runs).toFixed(1).padStart(9)}  total of ${rows.length} kernels`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
