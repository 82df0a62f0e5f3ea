/**
 * How promptly a run stops when asked: the built CLI on a reference command (fixture CNN,
 * 80% unstructured, default recovery with a calibration set), stopped by a signal after each delay, and
 * run with each --time-budget. Prints one JSON line per run: the seconds from the signal to the exit,
 * and the seconds past the time budget at exit (process start-up included), with the stage it stopped in.
 * Usage: node --import tsx bench/stop.ts [--signal SIGTERM] [--delays 2,10,30] [--budgets 10,30]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const ROOT = path.resolve(import.meta.dirname, '..');
const list = (s: string): number[] => (s ? s.split(',').map(Number) : []);
const signal = arg('signal', 'SIGTERM') as NodeJS.Signals;
const delays = list(arg('delays', '2,10,30'));
const budgets = list(arg('budgets', '10,30'));
const args = (out: string) => ['bin/prune-guard.js', 'run', '--model', 'fixtures/resnet.onnx', '--data', 'fixtures/fmnist-test.npz', '--calib', 'fixtures/fmnist-calib.npz', '--sparsity', '0.8', '--method', 'unstructured', '--out', out, '--quiet'];

async function once(extra: string[], killAfterS?: number): Promise<{ code: number | null; totalS: number; stopS?: number; out: string; stderr: string }> {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-stop-')), 'out');
  const child = spawn(process.execPath, [...args(out), ...extra], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b) => (stderr += b));
  const t0 = performance.now();
  let sent: number | undefined;
  const timer = killAfterS === undefined ? undefined : setTimeout(() => ((sent = performance.now()), child.kill(signal)), killAfterS * 1000);
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  clearTimeout(timer);
  const end = performance.now();
  return { code, totalS: (end - t0) / 1000, stopS: sent === undefined ? undefined : (end - sent) / 1000, out, stderr };
}

const round = (x: number) => Math.round(x * 100) / 100;
console.log(`load average ${os.loadavg().map(round).join(' ')}, ${os.availableParallelism()} cores`);
for (const d of delays) {
  const r = await once([], d);
  const stage = r.stderr.trim().split('\n').filter((l) => !/stopped by/.test(l)).pop();
  console.log(JSON.stringify({ signal, after_s: d, exit: r.code, stop_s: r.stopS === undefined ? null : round(r.stopS), stage }));
}
for (const b of budgets) {
  const r = await once(['--time-budget', String(b)]);
  let stage: string | null = null;
  try {
    stage = (JSON.parse(fs.readFileSync(path.join(r.out, 'ledger.json'), 'utf8')) as { timed_out?: { stage: string } }).timed_out?.stage ?? null;
  } catch {
    // no ledger: the run failed before writing one
  }
  console.log(JSON.stringify({ time_budget_s: b, exit: r.code, total_s: round(r.totalS), past_budget_s: round(r.totalS - b), stage }));
}
