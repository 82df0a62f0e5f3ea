/**
 * Does the statistical gate survive a noisy shared runner?
 *  1. builds a head model that is really ~10% slower with bit-identical outputs (dead MatMul branch),
 *     calibrating the branch width by long interleaved measurements;
 *  2. per condition (`idle`, and `busy`: two `yes > /dev/null` processes beside it), measures the
 *     head's real slowdown there, then runs `prune-guard compare` N times A/A (base vs itself) and N
 *     times A/B (base vs slow head), alternating, through the built CLI exactly as a user would;
 *  3. reports A/A false alarms (any failed budget) and how often the slow head failed latency-regression.
 * Usage: npm run bench:gate -- [--model fixtures/cnn-bn.onnx] [--runs 20] [--target 0.10] [--batch 32]
 *   [--threads 1] [--repeat 3] [--conditions idle,busy]
 */
import { execFileSync, spawn } from 'node:child_process';
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
const repeat = arg('repeat', '3');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-gate-'));
const head = path.join(work, 'head-slow.onnx');
// the latency decision runs with its defaults (runs, max-runs, max-seconds): what a user's compare does
const compareFlags = ['--batch-sizes', String(batch), '--threads', threads, '--repeat', repeat, '--quiet'];

const base = loadModel(model).proto;
const inputs = modelInputs(base, model);
const features = (inputs[0].dims.slice(1) as number[]).reduce((a, b) => a * b, 1);
const ds = loadDataset(data, inputs, { requireLabels: true, modelPath: model });
const source = sliceBatch(ds, 0, batch);

async function slowdown(file: string, rounds: number): Promise<{ ratio: number; ci: [number, number] }> {
  const s = await measureInterleaved([model, file], source, { batchSizes: [batch], warmup: 10, runs: rounds, threads: Number(threads), repeat: Number(repeat) });
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

// 2. A/A and A/B through the CLI, idle and beside busy processes
interface Outcome { verdict: string; fails: string[]; latency: { actual: number; ci: [number, number]; verdict: string; sequential?: { outcome: string; stopped: string; rounds: number; noise: number } }; rounds: number; seconds: number }
function compare(headFile: string, tag: string): Outcome {
  const out = path.join(work, `cmp-${tag}`);
  const t0 = performance.now();
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'bin/prune-guard.js'), 'compare', '--base', model, '--head', headFile, '--data', data, '--out', out, ...compareFlags], { stdio: ['ignore', 'ignore', 'ignore'] });
  } catch (e) {
    if ((e as { status?: number }).status !== 1) throw e;
  }
  const seconds = (performance.now() - t0) / 1000;
  const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8'));
  const m = ledger.models[0];
  const lat = m.budgets.find((b: { name: string }) => b.name === 'latency-regression');
  return { verdict: ledger.verdict, fails: m.budgets.filter((b: { verdict: string }) => b.verdict === 'fail').map((b: { name: string }) => b.name), latency: lat, rounds: m.steps[0].latency.runs, seconds };
}

/** `yes > /dev/null` processes competing for the cores while `run` runs; stopped by their own ids. */
async function withBusy<T>(count: number, run: () => Promise<T>): Promise<T> {
  const children = Array.from({ length: count }, () => spawn('yes', [], { stdio: ['ignore', fs.openSync('/dev/null', 'w'), 'ignore'] }));
  try {
    return await run();
  } finally {
    for (const c of children) c.kill('SIGTERM');
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const summary = (rs: Outcome[]) => ({
  fail_verdicts: rs.filter((r) => r.verdict === 'fail').length,
  latency_fail: rs.filter((r) => r.latency.verdict === 'fail').length,
  latency_warn: rs.filter((r) => r.latency.verdict === 'warn').length,
  accuracy_fail: rs.filter((r) => r.fails.some((f) => f !== 'latency-regression')).length,
  median_estimate: pct(med(rs.map((r) => r.latency.actual))),
  median_half_width: pct(med(rs.map((r) => (r.latency.ci[1] - r.latency.ci[0]) / 2))),
  median_noise: pct(med(rs.map((r) => r.latency.sequential?.noise ?? NaN))),
  median_rounds: med(rs.map((r) => r.rounds)),
  median_seconds: med(rs.map((r) => r.seconds)).toFixed(1),
  stopped: Object.fromEntries(['decided', 'round-cap', 'time-cap'].map((k) => [k, rs.filter((r) => r.latency.sequential?.stopped === k).length])),
});

const conditions = arg('conditions', 'idle,busy').split(',').filter(Boolean);
const report: Record<string, unknown> = {
  model: path.relative(ROOT, model),
  data: path.relative(ROOT, data),
  batch,
  threads,
  flags: compareFlags.join(' '),
  head: { width: best.width, slowdown: pct(verify.ratio - 1), ci: verify.ci.map((x) => pct(x - 1)), identical_outputs: identical },
  latency_regression_limit: '5.0% (compare default)',
};
for (const condition of conditions) {
  const busy = condition === 'busy' ? 2 : 0;
  const results: Record<'aa' | 'ab', Outcome[]> = { aa: [], ab: [] };
  const load: number[] = [];
  await withBusy(busy, async () => {
    // the slowdown the head really has under this condition, measured interleaved
    const measured = await slowdown(head, 600);
    report[`head_${condition}`] = { slowdown: pct(measured.ratio - 1), ci: measured.ci.map((x) => pct(x - 1)) };
    for (let i = 0; i < runs; i++) {
      // alternate so both series see the same stretch of machine load
      for (const kind of ['aa', 'ab'] as const) {
        const o = compare(kind === 'aa' ? model : head, `${condition}-${kind}-${i}`);
        results[kind].push(o);
        load.push(os.loadavg()[0]);
        const s = o.latency.sequential;
        console.error(`${condition} ${kind} ${i + 1}/${runs}: ${o.verdict} latency-regression ${pct(o.latency.actual)} [${o.latency.ci.map(pct).join(', ')}] ${o.latency.verdict} (${o.rounds} rounds, ${s?.stopped}, noise ±${pct(s?.noise ?? NaN)}, ${o.seconds.toFixed(1)} s, load ${os.loadavg()[0].toFixed(1)})`);
      }
    }
  });
  report[condition] = { busy_processes: busy, load_average: `${Math.min(...load).toFixed(1)}-${Math.max(...load).toFixed(1)}`, aa: summary(results.aa), ab: summary(results.ab) };
  const r = report[condition] as { aa: ReturnType<typeof summary>; ab: ReturnType<typeof summary> };
  console.log(`${condition} (${busy} busy processes): A/A ${r.aa.fail_verdicts}/${runs} runs failed (latency ${r.aa.latency_fail}, accuracy ${r.aa.accuracy_fail}, warned ${r.aa.latency_warn}); ` +
    `A/B (${report.head && (report[`head_${condition}`] as { slowdown: string }).slowdown} slower): latency-regression failed in ${r.ab.latency_fail}/${runs}, warned in ${r.ab.latency_warn}/${runs}`);
}
console.log(JSON.stringify(report, null, 2));
