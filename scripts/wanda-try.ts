// Experiment: keep global magnitude's per-layer sparsities, but choose WHICH weights within each layer by
// Wanda's |W_ij| * ||X_j||_2 (input-channel norms on the calibration set); then reconstruct + distill.
// npx tsx scripts/wanda-try.ts MODEL SPARSITY [mode: magnitude|wanda]
import { loadDataset } from '../src/data/dataset.js';
import { loadModel } from '../src/onnx/model.js';
import { modelInputs } from '../src/onnx/signature.js';
import { GraphIndex, attrInt } from '../src/onnx/graph.js';
import { setTensorFloat32, tensorToFloat32 } from '../src/onnx/tensor.js';
import { magnitudePrune, magnitudeMask } from '../src/prune/magnitude.js';
import { prunableWeights } from '../src/prune/prunable.js';
import { countSparsity } from '../src/prune/sparsity.js';
import { calibScore } from '../src/recover/calibScore.js';
import { DEFAULT_DISTILL, distill } from '../src/recover/distill/distill.js';
import { DEFAULT_RECONSTRUCT, reconstruct } from '../src/recover/reconstruct.js';
import { captureActivations, sessionFromModel, withExtraOutputs } from '../src/onnx/runtime/session.js';

const [file, sp, mode] = process.argv.slice(2);
const dense = loadModel(file).proto;
const inputs = modelInputs(dense, file);
const calib = loadDataset('fixtures/fmnist-calib.npz', inputs, { requireLabels: true });
const test = loadDataset('fixtures/fmnist-test.npz', inputs, { requireLabels: true });
const weights = prunableWeights(dense, { exclude: [], keepFirstLayer: false, keepLastLayer: false });
const glob = magnitudePrune(dense, weights, Number(sp), 'global');
const perLayer = countSparsity(glob.model, weights).layers;
let model = glob.model;
if (mode === 'wanda') {
  const index = new GraphIndex(dense.graph!);
  const nodes = weights.map((w) => index.order.find((n) => n.name === w.node && n.input.includes(w.initializer))!);
  const xs = [...new Set(nodes.map((n) => n.input[0]))];
  const session = await sessionFromModel(withExtraOutputs(dense, xs));
  const acts = await captureActivations(session, calib, xs);
  await session.release();
  const norms = new Map<string, Float64Array>();
  for (const [name, a] of acts) {
    const conv = a.dims.length === 4;
    const c = conv ? a.dims[1] : a.dims[a.dims.length - 1];
    const inner = conv ? a.dims[2] * a.dims[3] : 1;
    const out = new Float64Array(c);
    for (let i = 0; i < a.data.length; i++) {
      const ch = conv ? Math.floor(i / inner) % c : i % c;
      out[ch] += a.data[i] * a.data[i];
    }
    norms.set(name, out.map(Math.sqrt));
  }
  const out = glob.model;
  const oi = new GraphIndex(out.graph!);
  weights.forEach((w, j) => {
    const node = nodes[j];
    const nrm = norms.get(node.input[0])!;
    const t = oi.initializers.get(w.initializer)!;
    const v = tensorToFloat32(index.initializers.get(w.initializer)!);
    const score = new Float32Array(v.length);
    const d = w.dims;
    for (let i = 0; i < v.length; i++) {
      let ch: number;
      if (node.opType === 'Conv') {
        const per = v.length / d[0];
        const k = per / d[1];
        const groups = attrInt(node, 'group', 1);
        const o = Math.floor(i / per);
        ch = Math.floor(o / (d[0] / groups)) * d[1] + Math.floor((i % per) / k);
      } else if (node.opType === 'Gemm' && attrInt(node, 'transB', 0)) ch = i % d[1];
      else ch = Math.floor(i / d[d.length - 1]) % d[d.length - 2];
      score[i] = Math.abs(v[i]) * nrm[ch];
    }
    const k = Math.round(perLayer[j].sparsity * v.length);
    const [m] = magnitudeMask([score], k);
    setTensorFloat32(t, v.map((x, i) => (m[i] ? x : 0)));
  });
  model = out;
}
const acc = async (m: typeof model) => ((await calibScore(m, test)).accuracy * 100).toFixed(2);
console.log(mode, 'pruned', await acc(model), 'sparsity', countSparsity(model, weights).overall.toFixed(4));
model = (await reconstruct(dense, model, weights.map((x) => x.initializer), calib, DEFAULT_RECONSTRUCT)).model;
console.log('reconstruct', await acc(model));
const r = await distill(dense, model, calib, new Set(weights.map((x) => x.initializer)), DEFAULT_DISTILL);
console.log('distill', await acc(r.model), 'best epoch', r.bestEpoch);
