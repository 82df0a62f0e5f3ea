/**
 * Does the statistical gate survive a noisy shared runner?
 *  1. builds a head model that is really ~10% slower with bit-identical outputs (dead MatMul branch),
 *     calibrating the branch width by long interleaved measurements;
 *  2. runs `prune-guard compare` N times A/A (base vs itself) and N times A/B (base vs slow head),
 *     through the built CLI exactly as a user would;
 *  3. reports A/A false alarms (any failed budget) and how often the slow head failed latency-regression.
 * Usage: npm run bench:gate -- [--model fixtures/cnn-bn.onnx] [--runs 20] [--target 0.10]
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadDataset, sliceBatch } from '../src/data/dataset.js';
import { onnxruntime } from '../src/onnx/runtime/ort.js';
import { measureInterleaved, pairedMedianRatio } from '../src/measure/latency.js';
import { loadModel, saveModel } from '../src/onnx/model.js';
import { modelInputs } from '../src/onnx/signature.js';
import { addDeadBranch } from './deadBranch.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const ROOT = path.resolve(import.meta.dirname, '..');
const model = path.resolve(ROOT, arg('model', 'fixtures/cnn-bn.onnx'));
const data = path.resolve(ROOT, arg('data', 'fixtures/fmnist-test.npz'));
const runs = Number(arg('runs', '20'));
const target = Number(arg('target', '0.10'));
const batch = Number(arg('batch', '32'));
const threads = arg('threads', '1');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-gate-'));
const head = path.join(work, 'head-slow.onnx');
const compareFlags = ['--batch-sizes', String(batch), '--threads', threads, '--warmup', '10', '--runs', '40', '--target-rel-ci', '0.01', '--max-seconds', '30', '--repeat', '3', '--quiet'];

const base = loadModel(model).proto;
const inputs = modelInputs(base, model);
const features = (inputs[0].dims.slice(1) as number[]).reduce((a, b) => a * b, 1);
const ds = loadDataset(data, inputs, { requireLabels: true, modelPath: model });
const source = sliceBatch(ds, 0, batch);

async function slowdown(file: string, rounds: number): Promise<{ ratio: number; ci: [number, number] }> {
  const s = await measureInterleaved([model, file], source, { batchSizes: [batch], warmup: 10, runs: rounds, threads: Number(threads), repeat: 3 });
  return pairedMedianRatio(s[1][0], s[0][0]);
}

/** Same predictions, bit for bit, on the first batch: the branch really adds nothing. */
async function sameOutputs(file: string): Promise<boolean> {
  const { ort } = onnxruntime();
  const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
  for (const [name, a] of source) feeds[name] = new ort.Tensor(a.dtype, a.data as never, a.dims);
  const outs: Float32Array[] = [];
  for (const f of [model, file]) {
    const s = await ort.InferenceSession.create(f);
    outs.push((await s.run(feeds))[s.outputNames[0]].data as Float32Array);
    await s.release();
  }
  return outs[0].length === outs[1].length && outs[0].every((v, i) => Object.is(v, outs[1][i]) || v === outs[1][i]);
}

// 1. calibrate the dead branch to the target slowdown
const classes = ds.labels!.reduce((a, b) => Math.max(a, b), 0) + 1;
const tried: { width: number; ratio: number }[] = [];
let width = 128;
for (let step = 0; step < 6; step++) {
  saveModel(addDeadBranch(base, features, classes, width, 2), head);
  const { ratio } = await slowdown(head, 300);
  tried.push({ width, ratio });
  console.error(`calibrate: width ${width} -> ${((ratio - 1) * 100).toFixed(1)}% slower`);
  if (Math.abs(ratio - 1 - target) < 0.015) break;
  // slowdown grows about linearly with the branch's MACs (∝ width for the first layer)
  const next = Math.round(width * Math.min(2, Math.max(0.5, target / Math.max(0.01, ratio - 1))));
  width = next === width ? width + 16 : next;
}
const best = tried.reduce((a, b) => (Math.abs(a.ratio - 1 - target) <= Math.abs(b.ratio - 1 - target) ? a : b));
saveModel(addDeadBranch(base, features, classes, best.width, 2), head);
const verify = await slowdown(head, 600);
const identical = await sameOutputs(head);
console.error(`head: width ${best.width}, ${((verify.ratio - 1) * 100).toFixed(1)}% slower [${verify.ci.map((x) => ((x - 1) * 100).toFixed(1)).join(', ')}] over 600 rounds; outputs identical: ${identical}`);

// 2. A/A and A/B through the CLI
interface Outcome { verdict: string; fails: string[]; latency: { actual: number; ci: [number, number]; verdict: string }; rounds: number }
function compare(headFile: string, i: number): Outcome {
  const out = path.join(work, `cmp-${path.basename(headFile)}-${i}`);
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'bin/prune-guard.js'), 'compare', '--base', model, '--head', headFile, '--data', data, '--out', out, ...compareFlags], { stdio: ['ignore', 'ignore', 'ignore'] });
  } catch (e) {
    if ((e as { status?: number }).status !== 1) throw e;
  }
  const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8'));
  const m = ledger.models[0];
  const lat = m.budgets.find((b: { name: string }) => b.name === 'latency-regression');
  return { verdict: ledger.verdict, fails: m.budgets.filter((b: { verdict: string }) => b.verdict === 'fail').map((b: { name: string }) => b.name), latency: lat, rounds: m.steps[0].latency.runs };
}
const results: Record<'aa' | 'ab', Outcome[]> = { aa: [], ab: [] };
for (let i = 0; i < runs; i++) {
  // alternate so both series see the same stretch of machine load
  for (const kind of ['aa', 'ab'] as const) {
    const o = compare(kind === 'aa' ? model : head, i);
    results[kind].push(o);
    console.error(`${kind} ${i + 1}/${runs}: ${o.verdict} latency-regression ${(o.latency.actual * 100).toFixed(1)}% [${o.latency.ci.map((x) => (x * 100).toFixed(1)).join(', ')}] ${o.latency.verdict} (${o.rounds} rounds)`);
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const summary = (rs: Outcome[]) => ({
  fail_verdicts: rs.filter((r) => r.verdict === 'fail').length,
  latency_fail: rs.filter((r) => r.latency.verdict === 'fail').length,
  latency_warn: rs.filter((r) => r.latency.verdict === 'warn').length,
  accuracy_fail: rs.filter((r) => r.fails.some((f) => f !== 'latency-regression')).length,
  median_estimate: pct([...rs.map((r) => r.latency.actual)].sort((a, b) => a - b)[rs.length >> 1]),
  median_half_width: pct([...rs.map((r) => (r.latency.ci[1] - r.latency.ci[0]) / 2)].sort((a, b) => a - b)[rs.length >> 1]),
  median_rounds: [...rs.map((r) => r.rounds)].sort((a, b) => a - b)[rs.length >> 1],
});
const report = {
  model: path.relative(ROOT, model),
  data: path.relative(ROOT, data),
  batch,
  threads,
  flags: compareFlags.join(' '),
  head: { width: best.width, slowdown: pct(verify.ratio - 1), ci: verify.ci.map((x) => pct(x - 1)), identical_outputs: identical },
  latency_regression_limit: '5.0% (compare default)',
  aa: summary(results.aa),
  ab: summary(results.ab),
  load_average: os.loadavg().map((x) => x.toFixed(1)).join(' '),
};
console.log(JSON.stringify(report, null, 2));
console.log(`A/A: ${report.aa.fail_verdicts}/${runs} runs failed (latency ${report.aa.latency_fail}, accuracy ${report.aa.accuracy_fail}); ` +
  `A/B (${report.head.slowdown} slower): latency-regression failed in ${report.ab.latency_fail}/${runs}, warned in ${report.ab.latency_warn}/${runs}`);
