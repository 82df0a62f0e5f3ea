/**
 * `npm run bench:determinism`: the reproducibility check at full scale. Runs the same `prune-guard run`
 * (default: unstructured 80% of the fixture ResNet with recovery auto) twice through the built CLI, once
 * on the machine as it is and once beside two `yes > /dev/null` burners, and prints the pruned file's
 * sha256, every step's top-1 and the wall time of each run, and whether files and numbers are identical.
 * Results go to bench/results/determinism.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ARGS = process.argv.slice(2).length > 0
  ? process.argv.slice(2)
  : ['--model', 'fixtures/resnet.onnx', '--data', 'fixtures/fmnist-test.npz', '--calib', 'fixtures/fmnist-calib.npz', '--sparsity', '0.8', '--method', 'unstructured'];

interface RunRecord {
  load: string;
  loadavg_before: number;
  wall_s: number;
  exit: number | null;
  sha256: string;
  top1: Record<string, number | null>;
  calib: Record<string, (number | undefined)[]>;
  verdict: string;
  cut_short: unknown;
}

function run(load: string): RunRecord {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-determinism-'));
  const loadavg = os.loadavg()[0];
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/prune-guard.js'), 'run', ...ARGS, '--out', out, '--quiet'], { cwd: ROOT, encoding: 'utf8' });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0 && r.status !== 1) throw new Error(`run failed (${r.status}): ${r.stderr}`);
  const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8'));
  const m = ledger.models[0];
  const pruned = fs.readdirSync(out).find((f) => f.endsWith('.pruned.onnx'))!;
  const record: RunRecord = {
    load,
    loadavg_before: Math.round(loadavg * 10) / 10,
    wall_s: Math.round(wall),
    exit: r.status,
    sha256: createHash('sha256').update(fs.readFileSync(path.join(out, pruned))).digest('hex'),
    top1: Object.fromEntries(m.steps.map((s: { name: string; accuracy: number | null }) => [s.name, s.accuracy])),
    calib: Object.fromEntries(m.steps.filter((s: { recovery?: unknown }) => s.recovery).map((s: { name: string; recovery: Record<string, number> }) => [s.name, [s.recovery.calib_accuracy_after, s.recovery.calib_nll_after]])),
    verdict: m.verdict,
    cut_short: m.cut_short ?? null,
  };
  fs.rmSync(out, { recursive: true, force: true });
  return record;
}

function burners(n: number): ChildProcess[] {
  const sink = fs.openSync('/dev/null', 'w');
  return Array.from({ length: n }, () => spawn('yes', [], { stdio: ['ignore', sink, 'ignore'] }));
}

// the commit the built CLI comes from, read before the runs
const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
const idle = run('as found');
const busy = burners(2);
let loaded: RunRecord;
try {
  loaded = run('beside two `yes > /dev/null`');
} finally {
  for (const b of busy) b.kill('SIGKILL');
}
const same = idle.sha256 === loaded.sha256 && JSON.stringify([idle.top1, idle.calib]) === JSON.stringify([loaded.top1, loaded.calib]);
const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(2)}%`);
console.log(`prune-guard run ${ARGS.join(' ')}`);
console.log(`commit ${commit}, ${new Date().toISOString()}, ${os.cpus()[0]?.model ?? 'cpu'} x ${os.availableParallelism()}`);
console.log('| load | load avg before | wall s | sha256 of the pruned file | ' + Object.keys(idle.top1).join(' | ') + ' | verdict | cut short |');
console.log('| --- | ---: | ---: | --- | ' + Object.keys(idle.top1).map(() => '---:').join(' | ') + ' | --- | --- |');
for (const r of [idle, loaded]) console.log(`| ${r.load} | ${r.loadavg_before} | ${r.wall_s} | \`${r.sha256.slice(0, 16)}\` | ${Object.values(r.top1).map(pct).join(' | ')} | ${r.verdict} | ${r.cut_short ? JSON.stringify(r.cut_short) : 'no'} |`);
console.log(same ? 'identical: the same pruned file and the same quality numbers' : 'DIFFERENT');
fs.mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(ROOT, 'bench/results/determinism.json'), JSON.stringify({ args: ARGS, commit, runs: [idle, loaded], identical: same }, null, 2) + '\n');
process.exitCode = same ? 0 : 1;
