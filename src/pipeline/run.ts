import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Config } from '../config/schema.js';
import { loadDataset, type Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { evaluateBudgets, overallVerdict, type ResolvedBudget } from '../ledger/budgets.js';
import { renderMarkdown } from '../ledger/render.js';
import { LEDGER_SCHEMA, type ClassChange, type Ledger, type ModelLedger, type Step } from '../ledger/types.js';
import { modelCost } from '../onnx/flops.js';
import { GraphIndex } from '../onnx/graph.js';
import { loadModel, saveModel, setMetadata } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { modelInputs } from '../onnx/signature.js';
import { measureInterleaved, latencyStat } from '../measure/latency.js';
import { evaluateClassifier, type Predictions } from '../measure/evaluate.js';
import { accuracy, agreement, classSupport, confusionMatrix, expectedCalibrationError, perClassAccuracy } from '../measure/metrics.js';
import { onnxruntimeVersion, openSession } from '../measure/ort.js';
import { measureFileSize } from '../measure/size.js';
import { magnitudePrune } from '../prune/magnitude.js';
import { prunableWeights, type PrunableWeight } from '../prune/prunable.js';
import { countSparsity } from '../prune/sparsity.js';
import type { Progress } from './progress.js';
import { VERSION } from '../version.js';
import { sliceBatch } from '../data/dataset.js';

export interface RunRequest {
  model: string;
  data: string;
  calib?: string;
  shifts: { name: string; path: string }[];
  out: string;
  config: Config;
  budgets: ResolvedBudget[];
}

export interface RunResult {
  ledger: Ledger;
  markdown: string;
  ledgerPath: string;
  markdownPath: string;
}

/** Methods and recoveries this build implements; others are refused up front, never faked. */
const IMPLEMENTED_METHODS = new Set(['unstructured']);
const IMPLEMENTED_RECOVERIES = new Set(['none']);

function checkImplemented(config: Config): void {
  if (!IMPLEMENTED_METHODS.has(config.method)) {
    throw new UserError(`--method ${config.method}: not available in prune-guard ${VERSION} yet; use --method unstructured`);
  }
  if (!IMPLEMENTED_RECOVERIES.has(config.recovery)) {
    throw new UserError(`--recovery ${config.recovery}: not available in prune-guard ${VERSION} yet; use --recovery none`);
  }
  if (!(config.sparsity >= 0 && config.sparsity < 1)) throw new UserError(`--sparsity ${config.sparsity}: must be at least 0 and below 1`);
}

/** A model that ends in Softmax already outputs probabilities; scoring must not softmax them again. */
function endsInSoftmax(model: ModelProto): boolean {
  const index = new GraphIndex(model.graph!);
  const out = model.graph!.output[0]?.name;
  return index.producer.get(out)?.opType === 'Softmax';
}

export function prunedPath(out: string, model: string): string {
  return path.join(out, `${path.basename(model).replace(/\.onnx$/i, '')}.pruned.onnx`);
}

interface Evaluated {
  step: Step;
  preds: Predictions;
}

/** Every number of a step, measured on the artifact saved at `artifact` (read back from disk). */
async function measureStep(
  name: string,
  description: string,
  artifact: string,
  weights: readonly PrunableWeight[],
  data: Dataset,
  config: Config,
  progress: Progress,
  dense?: Predictions,
): Promise<Evaluated> {
  const saved = loadModel(artifact).proto;
  const sparsity = countSparsity(saved, weights);
  const cost = modelCost(saved);
  const size = measureFileSize(artifact);
  const session = await openSession(artifact, { threads: config.latency.threads });
  progress.start(`evaluate ${name}`, data.count);
  let preds: Predictions;
  try {
    preds = await evaluateClassifier(session, data, {
      batchSize: config.evalBatchSize,
      outputsAreProbabilities: endsInSoftmax(saved),
      modelPath: artifact,
      onBatch: (done) => progress.update(done),
    });
  } finally {
    await session.release();
    progress.stop();
  }
  const labels = data.labels!;
  const nll = -preds.logProbLabel.reduce((s, v) => s + v, 0) / data.count;
  const step: Step = {
    name,
    description,
    artifact,
    sparsity: sparsity.overall,
    params: cost.params,
    nonzero_params: cost.nonzeroParams,
    flops: cost.macs,
    size_bytes: size.bytes,
    gzip_bytes: size.gzipBytes,
    accuracy: accuracy(preds.pred, labels),
    per_class: perClassAccuracy(preds.pred, labels, preds.classes),
    confusion: confusionMatrix(preds.pred, labels, preds.classes),
    ece: expectedCalibrationError(preds.confidence, preds.correct, 15),
    nll,
    agreement: dense ? agreement(dense.pred, preds.pred) : 1,
    latency: null,
    latency_by_batch: [],
    layers: sparsity.layers,
  };
  return { step, preds };
}

async function shiftAccuracy(artifact: string, model: ModelProto, sets: { name: string; data: Dataset }[], config: Config): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (sets.length === 0) return out;
  const session = await openSession(artifact, { threads: config.latency.threads });
  try {
    for (const s of sets) {
      const p = await evaluateClassifier(session, s.data, { batchSize: config.evalBatchSize, outputsAreProbabilities: endsInSoftmax(model), modelPath: artifact });
      out[s.name] = accuracy(p.pred, s.data.labels!);
    }
  } finally {
    await session.release();
  }
  return out;
}

function classChanges(dense: Step, final: Step, labels: Int32Array, classes: number): ClassChange[] {
  const support = classSupport(labels, classes);
  const changes: ClassChange[] = [];
  dense.per_class!.forEach((d, c) => {
    const f = final.per_class![c];
    if (d === null || f === null) return;
    changes.push({ class: c, dense: d, pruned: f, drop: d - f, support: support[c] });
  });
  return changes.sort((a, b) => b.drop - a.drop || a.class - b.class);
}

/**
 * The whole `run` pipeline for one model: load, validate data, prune, save, then measure the dense
 * input and the saved output the same way, check budgets and write the ledger. Nothing is written
 * to `out` until the pruned model exists, and every file is written atomically.
 */
export async function runPipeline(req: RunRequest, progress: Progress): Promise<RunResult> {
  const { config } = req;
  checkImplemented(config);
  const dense = loadModel(req.model);
  const inputs = modelInputs(dense.proto, req.model);
  const data = loadDataset(req.data, inputs, { requireLabels: true, modelPath: req.model });
  const shiftSets = req.shifts.map((s) => ({ name: s.name, data: loadDataset(s.path, inputs, { requireLabels: true, modelPath: req.model }) }));
  if (req.calib) loadDataset(req.calib, inputs, { requireLabels: false, modelPath: req.model });

  const weights = prunableWeights(dense.proto, { exclude: config.exclude, keepFirstLayer: config.keepFirstLayer, keepLastLayer: config.keepLastLayer });
  if (weights.length === 0) {
    throw new UserError(`${req.model}: no prunable Conv, ConvTranspose, Gemm or MatMul weights (after exclude globs); nothing to prune`);
  }
  progress.note(`pruning ${weights.length} weight tensors to ${(config.sparsity * 100).toFixed(1)}% (${config.method}, ${config.scope})`);
  const pruned = magnitudePrune(dense.proto, weights, config.sparsity, config.scope);
  setMetadata(pruned.model, {
    'prune-guard.version': VERSION,
    'prune-guard.method': config.method,
    'prune-guard.scope': config.scope,
    'prune-guard.target_sparsity': String(config.sparsity),
    'prune-guard.source': path.basename(req.model),
  });
  const outPath = prunedPath(req.out, req.model);
  if (path.resolve(outPath) === path.resolve(req.model)) {
    throw new UserError(`--out ${req.out}: would overwrite the input model ${req.model}; choose another output folder`);
  }
  fs.mkdirSync(req.out, { recursive: true });
  saveModel(pruned.model, outPath);

  const denseEval = await measureStep('dense', 'input model, unchanged', req.model, weights, data, config, progress);
  const prunedEval = await measureStep('prune', `${config.method} magnitude pruning (${config.scope}) to ${(config.sparsity * 100).toFixed(1)}%`, outPath, weights, data, config, progress, denseEval.preds);
  denseEval.step.shift_accuracy = await shiftAccuracy(req.model, dense.proto, shiftSets, config);
  prunedEval.step.shift_accuracy = await shiftAccuracy(outPath, pruned.model, shiftSets, config);

  const runs = config.batchSizes.length * (config.latency.warmup + config.latency.runs);
  progress.start('latency (interleaved dense/pruned)', runs);
  const source = sliceBatch(data, 0, Math.min(data.count, Math.max(...config.batchSizes)));
  const samples = await measureInterleaved([req.model, outPath], source, { ...config.latency, batchSizes: config.batchSizes }, (done) => progress.update(done));
  progress.stop();
  for (const [i, ev] of [denseEval, prunedEval].entries()) {
    ev.step.latency_by_batch = config.batchSizes.map((b, j) => latencyStat(b, samples[i][j]));
    ev.step.latency = ev.step.latency_by_batch[0];
  }

  const steps = [denseEval.step, prunedEval.step];
  const budgets = evaluateBudgets(req.budgets, { dense: denseEval.step, final: prunedEval.step });
  const verdict = overallVerdict(budgets.map((b) => b.verdict));
  const modelLedger: ModelLedger = {
    model: req.model,
    pruned: outPath,
    method: config.method,
    target_sparsity: config.sparsity,
    steps,
    budgets,
    verdict,
    class_changes: classChanges(denseEval.step, prunedEval.step, data.labels!, denseEval.preds.classes),
    eval: { data: req.data, samples: data.count, classes: denseEval.preds.classes },
  };
  const ledger: Ledger = {
    schema: LEDGER_SCHEMA,
    verdict,
    tool: { name: 'prune-guard', version: VERSION },
    created_at: new Date().toISOString(),
    runtime: { onnxruntime: onnxruntimeVersion(), provider: 'cpu', threads: config.latency.threads, platform: `${process.platform}-${process.arch}` },
    models: [modelLedger],
  };
  const markdown = renderMarkdown(ledger);
  const ledgerPath = path.join(req.out, 'ledger.json');
  const markdownPath = path.join(req.out, 'ledger.md');
  writeFileAtomic(ledgerPath, JSON.stringify(ledger, null, 2) + '\n');
  writeFileAtomic(markdownPath, markdown);
  return { ledger, markdown, ledgerPath, markdownPath };
}
