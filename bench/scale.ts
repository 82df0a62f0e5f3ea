/**
 * Scale measurements: time and peak memory of each pipeline stage on big torchvision models, each
 * model in its own child process (bench/scaleStages.ts). Prints a markdown table.
 *
 *   /usr/bin/python3 fixtures/export_torchvision.py fixtures/scale resnet50 densenet121 vgg16 vit_b_16
 *   npm run bench:scale [-- names...]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { markdownTable } from 'markdown-table';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const names = process.argv.slice(2).length ? process.argv.slice(2) : ['resnet50', 'densenet121', 'vgg16', 'vit_b_16'];

interface StageLine {
  stage: string;
  ms: number;
  cpuMs: number;
  peakMB: number;
  fileMB?: number;
  weights?: number;
  dataMB?: number;
}

const rows: string[][] = [];
const summary: string[][] = [];
for (const name of names) {
  const file = path.join(ROOT, 'fixtures/scale', `${name}.onnx`);
  if (!fs.existsSync(file)) {
    process.stderr.write(`skip ${name}: ${file} missing; export it with fixtures/export_torchvision.py\n`);
    continue;
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/scaleStages.ts'), file], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    process.stderr.write(`${name} failed:\n${r.stderr}\n`);
    continue;
  }
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as StageLine);
  const fileMB = lines[0].fileMB!;
  const dataMB = lines.find((l) => l.dataMB !== undefined)?.dataMB ?? 0;
  for (const l of lines) {
    rows.push([name, l.stage, (l.ms / 1000).toFixed(2), (l.cpuMs / 1000).toFixed(2), l.peakMB.toFixed(0), l.weights !== undefined ? `${(l.weights / 1e6).toFixed(1)}M weights` : '']);
  }
  const peak = Math.max(...lines.map((l) => l.peakMB));
  const threshold = lines.find((l) => l.stage === 'global threshold')!;
  summary.push([
    name,
    fileMB.toFixed(0),
    `${(threshold.weights! / 1e6).toFixed(1)}M`,
    (threshold.cpuMs / 1000).toFixed(2),
    peak.toFixed(0),
    (4 * fileMB + dataMB).toFixed(0),
    peak <= 4 * fileMB + dataMB ? 'yes' : 'no',
  ]);
}

process.stdout.write(
  `${markdownTable([['model', 'stage', 'wall s', 'CPU s', 'peak RSS so far (MB)', ''], ...rows], { align: ['l', 'l', 'r', 'r', 'r', 'l'] })}\n\n` +
    `${markdownTable([['model', 'file MB', 'prunable weights', 'global threshold CPU s', 'peak RSS MB', '4x model + data MB', 'within'], ...summary], { align: ['l', 'r', 'r', 'r', 'r', 'r', 'l'] })}\n`,
);
