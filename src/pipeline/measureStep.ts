import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import type { Step } from '../ledger/types.js';
import { endsInSoftmax, evaluateClassifier, type Predictions } from '../onnx/runtime/classifier.js';
import { accuracy, agreement, confusionMatrix, perClassAccuracy } from '../measure/metrics.js';
import { expectedCalibrationError } from '../onnx/runtime/scores.js';
import { openSession } from '../onnx/runtime/ort.js';
import { measureFileSize } from '../measure/size.js';
import { modelCost } from '../onnx/flops.js';
import { loadModel } from '../onnx/model.js';
import type { PrunableWeight } from '../prune/prunable.js';
import { countSparsity } from '../prune/sparsity.js';
import type { Progress } from '../io/progress.js';
import { boundedBatch } from '../onnx/runtime/activationBudget.js';
import { collectGarbage } from './release.js';
import { stepName, type StepKind, type StepRecord } from './steps.js';
import { QUALITY_THREADS } from '../onnx/runtime/quality.js';

export interface MeasuredStep {
  kind: StepKind;
  step: Step;
  preds: Predictions;
  /** predictions on each labelled shift set, by name, for paired statistics */
  shiftPreds?: Map<string, Predictions>;
}

export interface StepContext {
  data: Dataset;
  shifts: { name: string; data: Dataset }[];
  denseWeights: readonly PrunableWeight[];
  config: Config;
  progress: Progress;
  /** the dense model's predictions, for agreement; absent when measuring the dense model itself */
  dense?: Predictions;
  /** execution provider resolved for this run; cpu when absent */
  provider?: 'cpu' | 'cuda';
}

/** What the saved file holds, read in a function of its own so the parsed model is garbage before onnxruntime loads its copy. */
function savedFacts(artifact: string, denseWeights: readonly PrunableWeight[], evalBatchSize: number) {
  const saved = loadModel(artifact).proto;
  // onnxruntime's arena keeps a run's high-water mark, so the batch is cut to fit the activation budget
  // (ViT-B/16: 20 of 32), which also keeps glibc from hoarding per-thread buffers as it did without the arena
  return { sparsity: countSparsity(saved, denseWeights), cost: modelCost(saved), probabilities: endsInSoftmax(saved), batch: boundedBatch(saved, evalBatchSize) };
}

/**
 * Every number of a step except latency (measured interleaved across steps), from the artifact saved
 * at `artifact`, read back from disk: what the ledger reports is what the file holds.
 */
export async function measureStep(kind: StepKind, description: string, artifact: string, ctx: StepContext): Promise<MeasuredStep> {
  const { data, config, progress } = ctx;
  const name = stepName(kind);
  const { sparsity, cost, probabilities, batch } = savedFacts(artifact, ctx.denseWeights, config.evalBatchSize);
  const size = measureFileSize(artifact);
  collectGarbage();
  // evaluation is quality work: a fixed thread count, whatever latency.threads is
  const session = await openSession(artifact, { threads: QUALITY_THREADS, provider: ctx.provider });
  let preds: Predictions;
  const shiftAccuracy: Record<string, number> = {};
  const shiftPreds = new Map<string, Predictions>();
  try {
    progress.stage({ kind: 'evaluate', step: name, total: data.count });
    preds = await evaluateClassifier(session, data, {
      batchSize: batch,
      outputsAreProbabilities: probabilities,
      modelPath: artifact,
      onBatch: (done) => progress.update(done),
    });
    progress.stop();
    for (const s of ctx.shifts) {
      const p = await evaluateClassifier(session, s.data, { batchSize: batch, outputsAreProbabilities: probabilities, modelPath: artifact, unlabelled: !s.data.labels });
      if (s.data.labels) shiftAccuracy[s.name] = accuracy(p.pred, s.data.labels);
      shiftPreds.set(s.name, p);
    }
  } finally {
    progress.stop();
    await session.release();
  }
  const labels = data.labels!;
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
    nll: -preds.logProbLabel.reduce((s, v) => s + v, 0) / data.count,
    agreement: ctx.dense ? agreement(ctx.dense.pred, preds.pred) : 1,
    latency: null,
    latency_by_batch: [],
    shift_accuracy: shiftAccuracy,
    layers: sparsity.layers,
  };
  return { kind, step, preds, shiftPreds };
}

/** A saved step record measured, with the recovery and temperature it carries. */
export async function measureRecord(r: StepRecord, ctx: StepContext): Promise<MeasuredStep> {
  const m = await measureStep(r.step, r.description, r.artifact, ctx);
  if (r.recovery) m.step.recovery = r.recovery;
  if (r.temperature) m.step.temperature = r.temperature;
  return m;
}
