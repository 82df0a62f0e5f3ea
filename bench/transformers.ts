/**
 * Structured pruning of torchvision's transformers as fixtures/export_torchvision.py exports them (random
 * weights; the zero-initialised classifier gets seeded random weights here so the outputs depend on every
 * group):
 *
 *   node --import tsx bench/transformers.ts [vit_b_16 ...] [--sparsity 0.3]
 *
 * Per model: producers (the layers that create channels) and dependency groups found, groups prunable,
 * and every skipped group with its reason and what the user can do; then structured pruning at
 * --sparsity (global, l1): parameters and MACs against dense, and the pruned model against the original
 * with the removed channels' fan-in zeroed on a batch of one (exactness), with onnx.checker.
 * The check passes when at least 90% of producers sit in groups that are pruned or skipped for a reason
 * other than an unsupported op (ViT-B/16: 45 of its 50), and exactness holds to 1e-4. Exit 1 otherwise.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../src/onnx/model.js';
import { modelCost } from '../src/onnx/flops.js';
import { setTensorFloat32, tensorDims } from '../src/onnx/tensor.js';
import { renderSkip } from '../src/prune/structured/skip.js';
import { structuredGroups, structuredPrune } from '../src/prune/structured/structuredPrune.js';
import { seededRandom } from '../src/util/random.js';
import { prunedAgainstZeroed, randomFeeds } from '../test/prune/structured/exactness.js';
import { ensureScaleModels } from './exportScale.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const at = argv.indexOf('--sparsity');
const sparsity = at >= 0 ? Number(argv.splice(at, 2)[1]) : 0.3;
const names = argv.filter((a) => !a.startsWith('--'));
const models = names.length ? names : ['vit_b_16'];
const { missing, notice } = ensureScaleModels(ROOT, models, (l) => console.error(l));
if (notice) console.error(notice);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-transformers-'));
let failed = false;

for (const name of models.filter((m) => !missing.includes(m))) {
  const { proto } = loadModel(path.join(ROOT, 'fixtures/scale', `${name}.onnx`));
  const head = proto.graph!.initializer.find((t) => t.name === 'heads.head.weight');
  if (head) {
    const next = seededRandom(3);
    setTensorFloat32(head, Float32Array.from({ length: tensorDims(head).reduce((a, b) => a * b, 1) }, () => (next() * 2 - 1) * 0.05));
  }
  const t0 = performance.now();
  const { analysis, groups } = structuredGroups(proto, new Set());
  const secs = (performance.now() - t0) / 1000;
  const origins = (root: number) => new Set(analysis.spaces.members(root).map((m) => analysis.spaces.origin(m)));
  const producers = new Set(groups.flatMap((g) => [...origins(g.root)]));
  const covered = groups.filter((g) => g.skip?.kind !== 'unsupported').flatMap((g) => [...origins(g.root)]);
  const r = await structuredPrune(proto, { sparsity, scope: 'global', roundTo: 1, criterion: 'l1', protectedTensors: new Set() });
  const pruned = r.groups.filter((g) => g.kept < g.size);
  const dense = modelCost(proto);
  const small = modelCost(r.model);
  const { diff, pruned: a } = await prunedAgainstZeroed(r.base, r.analysis, r.keep, tmp, name, randomFeeds(proto, 1));
  let checker = 'ok';
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import onnx,sys; onnx.checker.check_model(sys.argv[1], full_check=True)', a], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    checker = `FAIL ${String((e as { stderr?: Buffer }).stderr ?? e).split('\n').filter(Boolean).pop()}`;
  }
  const ok = covered.length >= 0.9 * producers.size && diff < 1e-4 && checker === 'ok';
  failed ||= !ok;
  console.log(`## ${name}\n`);
  console.log(`- analysis: ${secs.toFixed(2)} s; ${producers.size} producers in ${groups.length} dependency groups, ${groups.filter((g) => !g.skip).length} prunable (${groups.filter((g) => !g.skip && g.block > 1).length} of attention heads)`);
  console.log(`- producers in groups pruned or skipped for a reason other than an unsupported op: ${covered.length} of ${producers.size}`);
  for (const g of groups.filter((x) => x.skip)) console.log(`- skipped: ${g.name} (${g.size} channels, ${origins(g.root).size} producers): ${renderSkip(g.skip!)}`);
  console.log(`- structured ${sparsity} (global, l1): ${pruned.length} groups pruned; parameters ${(small.params / dense.params).toFixed(3)}x dense, MACs ${(small.macs / dense.macs).toFixed(3)}x dense`);
  console.log(`- exactness (every group cut at once, batch 1): max relative difference ${diff.toExponential(1)}; onnx.checker ${checker}`);
  console.log(`- check: ${ok ? 'PASS' : 'FAIL'}\n`);
}
fs.rmSync(tmp, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
