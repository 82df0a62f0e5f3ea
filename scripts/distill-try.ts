// Experiment driver: prune a model, optionally reconstruct, distill, and print test top-1 at each stage.
// npx tsx scripts/distill-try.ts MODEL CALIB TEST SPARSITY [reconstruct] [lr] [epochs] [batch] [T] [w]
// env: PG_HINT (feature-distillation weight), PG_PATIENCE (epochs without a better held-out KL before stopping)
import { loadDataset } from '../src/data/dataset.js';
import { loadModel } from '../src/onnx/model.js';
import { modelInputs } from '../src/onnx/signature.js';
import { magnitudePrune } from '../src/prune/magnitude.js';
import { prunableWeights } from '../src/prune/prunable.js';
import { calibScore } from '../src/recover/calibScore.js';
import { DEFAULT_DISTILL, distill } from '../src/recover/distill/distill.js';
import { DEFAULT_RECONSTRUCT, reconstruct } from '../src/recover/reconstruct.js';

const [file, calibFile, testFile, sp, rec, lr, ep, bs, temp, w] = process.argv.slice(2);
const dense = loadModel(file).proto;
const inputs = modelInputs(dense, file);
const calib = loadDataset(calibFile, inputs, { requireLabels: true });
const test = loadDataset(testFile, inputs, { requireLabels: true });
const weights = prunableWeights(dense, { exclude: [], keepFirstLayer: false, keepLastLayer: false });
let model = magnitudePrune(dense, weights, Number(sp), 'global').model;
const acc = async (m: typeof model) => ((await calibScore(m, test)).accuracy * 100).toFixed(2);
console.log('dense', await acc(dense), 'pruned', await acc(model));
if (rec === 'reconstruct') {
  const t0 = performance.now();
  model = (await reconstruct(dense, model, weights.map((x) => x.initializer), calib, DEFAULT_RECONSTRUCT)).model;
  console.log('reconstruct', await acc(model), ((performance.now() - t0) / 1000).toFixed(1), 's');
}
const t0 = performance.now();
const r = await distill(dense, model, calib, new Set(weights.map((x) => x.initializer)), {
  ...DEFAULT_DISTILL,
  lr: Number(lr ?? DEFAULT_DISTILL.lr),
  maxEpochs: Number(ep ?? DEFAULT_DISTILL.maxEpochs),
  batch: Number(bs ?? DEFAULT_DISTILL.batch),
  temperature: Number(temp ?? DEFAULT_DISTILL.temperature),
  labelWeight: Number(w ?? DEFAULT_DISTILL.labelWeight),
  hintWeight: Number(process.env.PG_HINT ?? DEFAULT_DISTILL.hintWeight),
  patience: Number(process.env.PG_PATIENCE ?? DEFAULT_DISTILL.patience),
  onEpoch: (e) => console.log(JSON.stringify(e)),
});
console.log('distill', await acc(r.model), ((performance.now() - t0) / 1000).toFixed(1), 's', 'best epoch', r.bestEpoch, r.stopped, 'heldout', r.before, r.after, r.trainables, r.parameters);
