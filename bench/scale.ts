/**
 * Scale measurements on big torchvision models (random weights), each run in its own child process so
 * every peak is its own:
 *
 * 1. the stages alone (bench/scaleStages.ts): load, preflight, the global magnitude threshold, prune,
 *    save, a short evaluation and latency;
 * 2. the whole `run` pipeline (bench/scalePipeline.ts, what `prune-guard run` does) with each method, on
 *    `--samples` seeded random inputs (labels are meaningless with random weights), with the time and
 *    peak RSS of each of its stages, against the target of 4x (model file + data file).
 *
 *   /usr/bin/python3 fixtures/export_torchvision.py fixtures/scale resnet50 densenet121 vgg16 vit_b_16
 *   npm run bench:scale [-- names...] [--samples 512] [--methods unstructured,structured] [--no-stages] [--calib]
 *
 * --calib adds a calibration file of as many seeded random samples (another seed) and runs recovery
 * auto (reconstruction, BatchNorm re-estimation, distillation within recovery-time-budget); the limit
 * is then 4x (model + data + calibration data). Missing models are exported first (bench/exportScale.ts).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { markdownTable } from 'markdown-table';
import { writeNpz } from '../src/data/npz.js';
import { ensureScaleModels } from './exportScale.js';
import { seededRandom } from '../src/util/random.js';
import { loadModel } from '../src/onnx/model.js';
import { modelInputs } from '../src/onnx/signature.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv.splice(i, 2)[1] : undefined;
};
const samples = Number(flag('--samples') ?? 512);
const methods = (flag('--methods') ?? 'unstructured,structured').split(',').filter(Boolean);
const noStages = argv.includes('--no-stages');
const withCalib = argv.includes('--calib');
const rest = argv.filter((a) => !a.startsWith('--'));
const names = rest.length ? rest : ['resnet50', 'densenet121', 'vgg16', 'vit_b_16'];

interface StageLine {
  stage: string;
  ms: number;
  cpuMs: number;
  peakMB: number;
  fileMB?: number;
  weights?: number;
  dataMB?: number;
  calibMB?: number;
  total?: boolean;
  steps?: string[];
  notes?: string[];
}

function child(script: string, args: string[]): StageLine[] | undefined {
  // the child's notes (recovery's skips and bounds) go straight to this stderr, as they happen
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, script), ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) {
    process.stderr.write(`${script} ${args[0]} failed (exit ${r.status ?? r.signal})\n`);
    return undefined;
  }
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as StageLine);
}

/**
 * Seeded random inputs of the model's input shape with labels i % 10, written once per shape: the data
 * file a user would pass with --data. Made here, so its memory is not the measured process's.
 */
function dataFile(model: string, dir: string, seed = 7): string {
  const proto = loadModel(model).proto;
  const [input] = modelInputs(proto, model);
  const dims = input.dims.map((d, i) => (i === 0 ? samples : typeof d === 'number' ? d : 1));
  const file = path.join(dir, `random-${dims.join('x')}-seed${seed}.npz`);
  if (fs.existsSync(file)) return file;
  const next = seededRandom(seed);
  const x = new Float32Array(dims.reduce((a, d) => a * d, 1));
  for (let i = 0; i < x.length; i++) x[i] = next() * 2 - 1;
  const y = BigInt64Array.from({ length: samples }, (_, i) => BigInt(i % 10));
  writeNpz(file, { x: { dtype: 'float32', shape: dims, data: x }, y: { dtype: 'int64', shape: [samples], data: y } });
  return file;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-scale-'));
const stageRows: string[][] = [];
const summary: string[][] = [];
const pipelineRows: string[][] = [];
const pipelineSummary: string[][] = [];
const exported = ensureScaleModels(ROOT, names, (l) => process.stderr.write(`${l}\n`));
if (exported.notice) process.stderr.write(`${exported.notice}\n`);
try {
  for (const name of names) {
    const file = path.join(ROOT, 'fixtures/scale', `${name}.onnx`);
    if (!fs.existsSync(file)) {
      process.stderr.write(`skip ${name}: ${file} missing; export it with fixtures/export_torchvision.py\n`);
      continue;
    }
    if (!noStages) {
      process.stderr.write(`bench:scale: ${name} stages\n`);
      const lines = child('bench/scaleStages.ts', [file]);
      if (lines) {
        const fileMB = lines[0].fileMB!;
        const dataMB = lines.find((l) => l.dataMB !== undefined)?.dataMB ?? 0;
        for (const l of lines) {
          stageRows.push([name, l.stage, (l.ms / 1000).toFixed(2), (l.cpuMs / 1000).toFixed(2), l.peakMB.toFixed(0), l.weights !== undefined ? `${(l.weights / 1e6).toFixed(1)}M weights` : '']);
        }
        const peak = Math.max(...lines.map((l) => l.peakMB));
        const threshold = lines.find((l) => l.stage === 'global threshold')!;
        summary.push([name, fileMB.toFixed(0), `${(threshold.weights! / 1e6).toFixed(1)}M`, (threshold.cpuMs / 1000).toFixed(2), peak.toFixed(0), (4 * fileMB + dataMB).toFixed(0), peak <= 4 * fileMB + dataMB ? 'yes' : 'no']);
      }
    }
    const data = dataFile(file, work);
    const calib = withCalib ? dataFile(file, work, 8) : undefined;
    for (const method of methods) {
      process.stderr.write(`bench:scale: ${name} run --method ${method} (${samples} samples${calib ? ', --calib' : ''})\n`);
      const out = path.join(work, `${name}-${method}`);
      const lines = child('bench/scalePipeline.ts', [file, data, out, '--method', method, ...(calib ? ['--calib', calib] : [])]);
      fs.rmSync(out, { recursive: true, force: true });
      if (!lines) continue;
      const total = lines.find((l) => l.total)!;
      for (const l of lines.filter((x) => !x.total)) {
        pipelineRows.push([name, method, l.stage, (l.ms / 1000).toFixed(1), (l.cpuMs / 1000).toFixed(1), l.peakMB.toFixed(0)]);
      }
      const inputs = total.fileMB! + total.dataMB! + (total.calibMB ?? 0);
      const limit = 4 * inputs;
      pipelineSummary.push([name, method, calib ? 'yes' : 'no', total.fileMB!.toFixed(0), (total.dataMB! + (total.calibMB ?? 0)).toFixed(0), total.peakMB.toFixed(0), limit.toFixed(0), `${(total.peakMB / inputs).toFixed(2)}x`, total.peakMB <= limit ? 'yes' : 'no', (total.ms / 1000).toFixed(0)]);
      // each run's summary as soon as it ends, so a long run that is stopped keeps what finished
      process.stderr.write(`bench:scale: ${JSON.stringify({ name, method, calib: !!calib, loadavg: os.loadavg()[0], lines })}\n`);
      if (total.steps) process.stderr.write(`bench:scale: ${name} ${method} steps ${total.steps.join(', ')}; notes: ${(total.notes ?? []).join(' | ') || 'none'}\n`);
    }
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}

const parts: string[] = [];
if (stageRows.length) {
  parts.push(
    markdownTable([['model', 'stage', 'wall s', 'CPU s', 'peak RSS so far (MB)', ''], ...stageRows], { align: ['l', 'l', 'r', 'r', 'r', 'l'] }),
    markdownTable([['model', 'file MB', 'prunable weights', 'global threshold CPU s', 'peak RSS MB', '4x model + data MB', 'within'], ...summary], { align: ['l', 'r', 'r', 'r', 'r', 'r', 'l'] }),
  );
}
parts.push(
  markdownTable([['model', 'method', 'pipeline stage', 'wall s', 'CPU s', 'peak RSS (MB)'], ...pipelineRows], { align: ['l', 'l', 'l', 'r', 'r', 'r'] }),
  markdownTable([['model', 'method', 'calib', 'file MB', 'data (+ calib) MB', 'peak RSS MB', '4x (model + data) MB', 'peak / (model + data)', 'within', 'wall s'], ...pipelineSummary], { align: ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'l', 'r'] }),
);
process.stdout.write(parts.join('\n\n') + '\n');
