/**
 * Structured-pruning coverage over a folder of ONNX models (torchvision exports from
 * fixtures/export_torchvision.py, the fixtures, the real-world model):
 *
 *   node --import tsx bench/coverage.ts fixtures/scale [more dirs or .onnx files] [--per-group]
 *
 * For each model: dependency analysis time, groups found / prunable, then every prunable group pruned to
 * half at once and compared with the original whose fan-in of those channels is zeroed (exactness), plus
 * onnx.checker and an onnxruntime run of the result. --per-group repeats the check for each group alone.
 * Prints a Markdown table (docs/benchmarks.md's coverage table comes from it) and the skip reasons per model.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../src/onnx/model.js';
import { modelCost } from '../src/onnx/flops.js';
import { analyzeDependencies } from '../src/prune/structured/depgraph.js';
import { structuredPrune } from '../src/prune/structured/structuredPrune.js';
import { skipText } from '../src/prune/structured/skip.js';
import { alternateKeep, prunedAgainstZeroed, randomFeeds } from '../test/prune/structured/exactness.js';
import { untieConstants } from '../src/prune/structured/untie.js';

const args = process.argv.slice(2);
const perGroup = args.includes('--per-group');
const files = args.filter((a) => !a.startsWith('--')).flatMap((a) =>
  fs.statSync(a).isDirectory() ? fs.readdirSync(a).filter((f) => f.endsWith('.onnx')).sort().map((f) => path.join(a, f)) : [a],
);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-coverage-'));
const check = (f: string) => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import onnx,sys; onnx.checker.check_model(sys.argv[1], full_check=True)', f], { stdio: ['ignore', 'ignore', 'pipe'] });
    return 'ok';
  } catch (e) {
    return `FAIL ${String((e as { stderr?: Buffer }).stderr ?? e).split('\n').filter(Boolean).pop()}`;
  }
};

const rows: string[] = ['| model | analysis (s) | groups pruned / found | channels removed | params removed | MACs removed | exact (max rel diff) | onnx.checker |', '| - | - | - | - | - | - | - | - |'];
const reasons: string[] = [];
for (const file of files) {
  const name = path.basename(file, '.onnx');
  try {
    const { proto } = loadModel(file);
    const t0 = performance.now();
    const analysis = analyzeDependencies(untieConstants(proto));
    const secs = (performance.now() - t0) / 1000;
    const r = await structuredPrune(proto, { sparsity: 0.5, scope: 'layer', roundTo: 1, criterion: 'l1', protectedTensors: new Set() });
    const feeds = randomFeeds(proto, 1);
    let diff = 0;
    if (perGroup) {
      for (const g of analysis.groups.filter((x) => !x.skip && x.size > 1)) {
        diff = Math.max(diff, (await prunedAgainstZeroed(r.base, analysis, alternateKeep(analysis, g.root), tmp, name, feeds)).diff);
      }
    }
    // every group cut at once, last, so the file onnx.checker reads below is the pruned model
    const whole = await prunedAgainstZeroed(r.base, r.analysis, r.keep, tmp, name, feeds);
    diff = Math.max(diff, whole.diff);
    const a = whole.pruned;
    const c0 = modelCost(proto);
    const c1 = modelCost(r.model);
    const pruned = r.groups.filter((g) => g.kept < g.size);
    const ch = r.groups.filter((g) => !g.skip && g.size > 1);
    const removed = ch.reduce((n, g) => n + g.size - g.kept, 0);
    const total = ch.reduce((n, g) => n + g.size, 0);
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    rows.push(`| ${name} | ${secs.toFixed(2)} | ${pruned.length} / ${r.groups.length} | ${removed} / ${total} | ${pct(1 - c1.params / c0.params)} | ${c1.uncounted.length > c0.uncounted.length ? 'n/a' : pct(1 - c1.macs / c0.macs)} | ${diff.toExponential(1)}${perGroup ? ' (per group too)' : ''} | ${check(a)} |`);
    const counts = new Map<string, number>();
    for (const g of r.groups.filter((x) => x.skip)) {
      const key = `${g.skip!.kind}: ${skipText(g.skip!).replace(/^\S+ (\()/, '$1').replace(/'[^']*'/g, "'…'")}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    reasons.push(`${name}: ${[...counts].map(([k, n]) => `${n}x ${k}`).join('; ') || 'none skipped'}`);
  } catch (e) {
    rows.push(`| ${name} | CRASH | ${(e as Error).message.split('\n')[0]} | | | | | |`);
  }
  console.error(rows[rows.length - 1]);
}
console.log(rows.join('\n'));
console.log('\nSkipped groups by reason:\n');
for (const r of reasons) console.log(`- ${r}`);
fs.rmSync(tmp, { recursive: true, force: true });
