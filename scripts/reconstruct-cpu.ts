/**
 * Time `reconstruct` alone on one model: wall clock and process CPU seconds (onnxruntime threads
 * included), so its cost can be judged on a busy machine where wall time mostly measures waiting.
 *   npx tsx scripts/reconstruct-cpu.ts fixtures/resnet.onnx fixtures/fmnist-calib.npz 0.5
 */
import { loadDataset } from '../src/data/dataset.js';
import { loadModel } from '../src/onnx/model.js';
import { modelInputs } from '../src/onnx/signature.js';
import { magnitudePrune } from '../src/prune/magnitude.js';
import { prunableWeights } from '../src/prune/prunable.js';
import { DEFAULT_RECONSTRUCT, reconstruct } from '../src/recover/reconstruct.js';

const [modelPath, calibPath, sparsity = '0.5'] = process.argv.slice(2);
if (!modelPath || !calibPath) throw new Error('usage: reconstruct-cpu.ts MODEL CALIB [SPARSITY]');
const dense = loadModel(modelPath).proto;
const calib = loadDataset(calibPath, modelInputs(dense, modelPath), { requireLabels: false });
const weights = prunableWeights(dense, { exclude: [], keepFirstLayer: false, keepLastLayer: false });
const pruned = magnitudePrune(dense, weights, Number(sparsity), 'global').model;
const t0 = performance.now();
const c0 = process.cpuUsage();
const r = await reconstruct(dense, pruned, weights.map((w) => w.initializer), calib, DEFAULT_RECONSTRUCT);
const cpu = process.cpuUsage(c0);
console.log(`${modelPath} at ${sparsity}: ${r.layers.length} layers refit, wall ${((performance.now() - t0) / 1000).toFixed(1)} s, cpu ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s`);
