import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import type { Step } from '../ledger/types.js';
import { evaluateClassifier, type Predictions } from '../onnx/runtime/classifier.js';
import type { Head } from '../onnx/head.js';
import { agreement, confusionMatrix, groupAccuracy, labelF1, meanDefined } from '../measure/metrics.js';
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
import type { FidelityOutput } from '../measure/fidelity.js';
import { measureFidelity, referenceOutputs, type ReferenceOutputs } from '../measure/outputFidelity.js';
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
  /** the output judged and how it is read (findHead) */
  head: Head;
}

/** What the saved file holds, read in a function of its own so the parsed model is garbage before onnxruntime loads its copy. */
function savedFacts(artifact: string, denseWeights: readonly PrunableWeight[], evalBatchSize: number) {
  const saved = loadModel(artifact).proto;
  // onnxruntime's arena keeps a run's high-water mark, so the batch is cut to fit the activation budget
  // (ViT-B/16: 20 of 32), which also keeps glibc from hoarding per-thread buffers as it did without the arena
  return { sparsity: countSparsity(saved, denseWeights), cost: modelCost(saved), batch: boundedBatch(saved, evalBatchSize) };
}

/** What the saved file holds, its size, and a session on it to evaluate with (the parsed model released first). */
async function openStep(artifact: string, ctx: Pick<StepContext, 'denseWeights' | 'config' | 'provider'>) {
  const facts = savedFacts(artifact, ctx.denseWeights, ctx.config.evalBatchSize);
  const size = measureFileSize(artifact);
  collectGarbage();
  // evaluation is quality work: a fixed thread count, whatever latency.threads is
  const session = await openSession(artifact, { threads: QUALITY_THREADS, provider: ctx.provider });
  return { facts, size, session };
}

/** The numbers a step's saved file holds, whatever the task judges it by. */
function fileNumbers(name: string, description: string, artifact: string, facts: ReturnType<typeof savedFacts>, size: ReturnType<typeof measureFileSize>) {
  return {
    name,
    description,
    artifact,
    sparsity: facts.sparsity.overall,
    params: facts.cost.params,
    nonzero_params: facts.cost.nonzeroParams,
    flops: facts.cost.macs,
    size_bytes: size.bytes,
    gzip_bytes: size.gzipBytes,
  };
}

/**
 * Every number of a step except latency (measured interleaved across steps), from the artifact saved
 * at `artifact`, read back from disk: what the ledger reports is what the file holds.
 */
export async function measureStep(kind: StepKind, description: string, artifact: string, ctx: StepContext): Promise<MeasuredStep> {
  const { data, progress } = ctx;
  const name = stepName(kind);
  const { facts, size, session } = await openStep(artifact, ctx);
  const { batch } = facts;
  let preds: Predictions;
  const shiftAccuracy: Record<string, number> = {};
  const shiftPreds = new Map<string, Predictions>();
  try {
    progress.stage({ kind: 'evaluate', step: name, total: data.count });
    preds = await evaluateClassifier(session, data, {
      batchSize: batch,
      head: ctx.head,
      modelPath: artifact,
      onBatch: (done) => progress.update(done),
    });
    progress.stop();
    for (const s of ctx.shifts) {
      const p = await evaluateClassifier(session, s.data, { batchSize: batch, head: ctx.head, modelPath: artifact, unlabelled: !s.data.labels });
      if (s.data.labels) shiftAccuracy[s.name] = mean(p.correct);
      shiftPreds.set(s.name, p);
    }
  } finally {
    progress.stop();
    await session.release();
  }
  const multilabel = preds.perSample > 1;
  const f1 = ctx.head.task === 'multiclass' ? undefined : labelF1(preds.pred, preds.truth, preds.perSample);
  const step: Step = {
    ...fileNumbers(name, description, artifact, facts, size),
    accuracy: mean(preds.correct),
    per_class: groupAccuracy(preds.correct, preds.group, preds.classes),
    ...(multilabel ? {} : { confusion: confusionMatrix(preds.pred, preds.truth, preds.classes) }),
    ...(f1 ? { f1: multilabel ? meanDefined(f1) : f1[0], ...(multilabel ? { per_label_f1: f1 } : {}) } : {}),
    ece: expectedCalibrationError(preds.confidence, preds.correct, 15),
    nll: -preds.logProbLabel.reduce((s, v) => s + v, 0) / preds.logProbLabel.length,
    agreement: ctx.dense ? agreement(ctx.dense.pred, preds.pred) : 1,
    latency: null,
    latency_by_batch: [],
    shift_accuracy: shiftAccuracy,
    layers: facts.sparsity.layers,
  };
  return { kind, step, preds, shiftPreds };
}

/** What the fidelity task measures a step against: the outputs compared and the dense model's values of them. */
export interface FidelityContext extends Omit<StepContext, 'dense' | 'head' | 'shifts'> {
  outputs: readonly FidelityOutput[];
  /** the dense model's outputs on the evaluation set; measured (and set) with the dense step when absent */
  reference?: ReferenceOutputs;
}

/** A step of the fidelity task: the file's facts as in `measureStep`, quality as each output against the dense model's. */
export interface FidelityStep {
  kind: StepKind;
  step: Step;
}

/**
 * Every number of a step but latency, for the fidelity task: sparsity, size and MACs from the saved file,
 * then each compared output against the dense model's on the evaluation set (the dense step itself
 * records the reference outputs in `ctx.reference` and compares with them, as a check of the reading).
 */
export async function measureFidelityStep(kind: StepKind, description: string, artifact: string, ctx: FidelityContext): Promise<FidelityStep> {
  const { data, progress } = ctx;
  const name = stepName(kind);
  const { facts, size, session } = await openStep(artifact, ctx);
  const { batch } = facts;
  let fidelity;
  try {
    progress.stage({ kind: 'evaluate', step: name, total: data.count });
    ctx.reference ??= await referenceOutputs(session, data, batch, ctx.outputs);
    fidelity = await measureFidelity(session, data, batch, ctx.outputs, ctx.reference, (done) => progress.update(done));
  } finally {
    progress.stop();
    await session.release();
  }
  const step: Step = {
    ...fileNumbers(name, description, artifact, facts, size),
    accuracy: null,
    per_class: null,
    ece: null,
    nll: null,
    agreement: null,
    latency: null,
    latency_by_batch: [],
    layers: facts.sparsity.layers,
    fidelity,
  };
  return { kind, step };
}

/** A saved step record measured for the fidelity task, with the recovery it carries. */
export async function measureFidelityRecord(r: StepRecord, ctx: FidelityContext): Promise<FidelityStep> {
  const m = await measureFidelityStep(r.step, r.description, r.artifact, ctx);
  if (r.recovery) m.step.recovery = r.recovery;
  return m;
}

/** A saved step record measured, with the recovery and temperature it carries. */
export async function measureRecord(r: StepRecord, ctx: StepContext): Promise<MeasuredStep> {
  const m = await measureStep(r.step, r.description, r.artifact, ctx);
  if (r.recovery) m.step.recovery = r.recovery;
  if (r.temperature) m.step.temperature = r.temperature;
  return m;
}

function mean(x: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return x.length ? s / x.length : NaN;
}
