import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel, saveModel } from '../../../src/onnx/model.js';
import type { ModelProto } from '../../../src/onnx/proto/onnx_pb.js';
import { onnxruntime } from '../../../src/onnx/runtime/ort.js';
import { copyFloatValues } from '../../../src/onnx/runtime/values.js';
import { floatToHalf } from '../../../src/onnx/tensor.js';
import { modelInputs } from '../../../src/onnx/signature.js';
import { analyzeDependencies, type DependencyAnalysis } from '../../../src/prune/structured/depgraph.js';
import type { KeepMap } from '../../../src/prune/structured/layout.js';
import { removeChannels, zeroFanIn } from '../../../src/prune/structured/surgery.js';
import { untieConstants } from '../../../src/prune/structured/untie.js';
import { onnxCheckAll } from '../../support/onnxChecker.js';
import { tempDir } from '../../support/fixtures.js';

/** deterministic pseudo-random inputs for every graph input (batch 2); int64 inputs (token ids) get ids 0..9 */
export function randomFeeds(model: ModelProto, batch = 2): Record<string, { dims: number[]; data: Float32Array | BigInt64Array }> {
  const feeds: Record<string, { dims: number[]; data: Float32Array | BigInt64Array }> = {};
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  for (const i of modelInputs(model, "model")) {
    const dims = i.dims.map((d, k) => (typeof d === 'number' && d > 0 ? d : k === 0 ? batch : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    const data = i.dtype === 'int64' ? BigInt64Array.from({ length: n }, () => BigInt(Math.floor((rnd() + 1) * 5))) : Float32Array.from({ length: n }, rnd);
    feeds[i.name] = { dims, data };
  }
  return feeds;
}

/** The model's outputs on `feeds` as float32; a float16 input is fed the feeds rounded to float16. */
export async function runModel(file: string, feeds: ReturnType<typeof randomFeeds>): Promise<Float32Array[]> {
  const { ort } = onnxruntime();
  const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'disabled' });
  const half = new Set(s.inputMetadata.filter((m) => m.isTensor && m.type === 'float16').map((m) => m.name));
  const f: Record<string, InstanceType<typeof ort.Tensor>> = {};
  for (const [k, v] of Object.entries(feeds)) {
    if (v.data instanceof BigInt64Array) f[k] = new ort.Tensor('int64', v.data, v.dims);
    else f[k] = half.has(k) ? new ort.Tensor('float16', Uint16Array.from(v.data, floatToHalf), v.dims) : new ort.Tensor('float32', v.data, v.dims);
  }
  const r = await s.run(f);
  const out = s.outputNames.map((n) => copyFloatValues(r[n]));
  await s.release();
  return out;
}

export function maxRelDiff(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((x, j) => {
    const y = b[j];
    if (x.length !== y.length) worst = Infinity;
    let scale = 1e-6;
    for (let i = 0; i < x.length; i++) scale = Math.max(scale, Math.abs(x[i]));
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / scale);
  });
  return worst;
}

/** Keep every other channel (or head) of one group (drops the first: channel 0 removed proves indices move). */
export function alternateKeep(analysis: DependencyAnalysis, root: number): Map<number, Uint8Array> {
  const n = analysis.spaces.size(root);
  // attention groups go by whole heads
  const block = analysis.spaces.block(root);
  const m = new Uint8Array(n);
  for (let i = 0; i < n; i++) m[i] = Math.floor(i / block) % 2;
  if (n === block) m.fill(1);
  return new Map([[root, m]]);
}

/**
 * Channels of `keep` physically removed from `base` against `base` with their fan-in zeroed, both saved in
 * `dir` (`<name>.pruned.onnx`, `<name>.zeroed.onnx`) and run on `feeds`: the largest relative difference.
 */
export async function prunedAgainstZeroed(base: ModelProto, analysis: DependencyAnalysis, keep: KeepMap, dir: string, name: string, feeds: ReturnType<typeof randomFeeds>): Promise<{ diff: number; pruned: string }> {
  const pruned = path.join(dir, `${name}.pruned.onnx`);
  const zeroed = path.join(dir, `${name}.zeroed.onnx`);
  saveModel(removeChannels(base, analysis, keep), pruned);
  saveModel(zeroFanIn(base, analysis, keep), zeroed);
  return { diff: maxRelDiff(await runModel(pruned, feeds), await runModel(zeroed, feeds)), pruned };
}

export interface GroupCheck {
  group: string;
  diff: number;
  smaller: boolean;
}

/**
 * For every prunable group alone: physically remove half its channels, and compare with the original
 * model whose consumers' fan-in for those channels is zeroed. Also checks onnx.checker on each result.
 */
export async function exactnessPerGroup(file: string, opts: { check?: boolean; maxGroups?: number; batch?: number; as?: (m: ModelProto) => ModelProto } = {}): Promise<GroupCheck[]> {
  const loaded = loadModel(file).proto;
  const proto = untieConstants(opts.as ? opts.as(loaded) : loaded);
  const analysis = analyzeDependencies(proto);
  const dir = tempDir('pg-exact-');
  // a batch the analysis never evaluated shapes at: constants written from shape arithmetic must not bake it in
  const feeds = randomFeeds(proto, opts.batch ?? 3);
  const out: GroupCheck[] = [];
  const groups = analysis.groups.filter((g) => !g.skip && g.size > 1).slice(0, opts.maxGroups ?? Infinity);
  const written: string[] = [];
  for (const g of groups) {
    const keep = alternateKeep(analysis, g.root);
    const pruned = removeChannels(proto, analysis, keep);
    const reference = zeroFanIn(proto, analysis, keep);
    const a = path.join(dir, `p${g.root}.onnx`);
    const b = path.join(dir, `r${g.root}.onnx`);
    const sizeP = saveModel(pruned, a);
    const sizeR = saveModel(reference, b);
    written.push(a);
    const diff = maxRelDiff(await runModel(a, feeds), await runModel(b, feeds));
    out.push({ group: g.name, diff, smaller: sizeP < sizeR });
  }
  // one checker process for all the groups' files rather than a Python start per group; its message
  // names the file (p<root>.onnx), so the group that fails
  if (opts.check && written.length > 0) onnxCheckAll(written);
  fs.rmSync(dir, { recursive: true, force: true });
  return out;
}
