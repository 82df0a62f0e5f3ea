import { takeSamples, type Dataset } from '../../data/dataset.js';
import type { SafetyStop } from '../work.js';
import { onnxruntime, type OrtSession } from '../../onnx/runtime/ort.js';
import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import { captureActivations, sessionFromModel } from '../../onnx/runtime/session.js';
import { withExtraOutputs } from '../../onnx/subgraph.js';
import { Adam } from './adam.js';
import { EarlyStop } from './earlyStop.js';
import { boundedBatch } from '../../onnx/runtime/activationBudget.js';
import { UnsupportedOp } from './gradients.js';
import { distillLoss, relativeSquaredError, sigmoidDistillLoss, sigmoidHeldOut, sigmoidValues, softmaxRows } from './loss.js';
import { GraphIndex } from '../../onnx/graph.js';
import { inferShapes } from '../../onnx/shapes.js';
import { buildEvalGraph, buildTrainGraph, hintInput, hintScale, LABEL_INPUT, selectTrainables, TEACHER_INPUT, withParams, type LossKind, type Trainable } from './trainGraph.js';
import { copyFloatValues } from '../../onnx/runtime/values.js';
import { defaultHead } from '../../onnx/runtime/classifier.js';
import type { Head } from '../../onnx/head.js';
import { elementTypes } from '../../onnx/elementTypes.js';
import { DataType, dataTypeName } from '../../onnx/tensor.js';
import { fixedBatch, modelInputs } from '../../onnx/signature.js';

/** Distillation toward the dense model's outputs themselves (the fidelity task): no classifier head, no temperature. */
export interface DenseOutputs {
  outputs: readonly string[];
}

export interface DistillOptions {
  maxEpochs: number;
  batch: number;
  /** Adam's peak learning rate, decayed by a cosine over maxEpochs */
  lr: number;
  temperature: number;
  /** weight of cross-entropy with the calibration labels, when there are labels */
  labelWeight: number;
  /** fraction of the calibration set held out to pick the best epoch (never trained on) */
  holdout: number;
  /** stop after this many epochs without a held-out gain of CLEAR_HELDOUT_GAIN since the last such gain (EarlyStop) */
  patience: number;
  threads: number;
  /** the wall-clock safety stop: once passed, no further batch starts (the run is cut short) */
  stop?: SafetyStop;
  seed: number;
  /** weight of feature distillation on the outputs of the pruned layers (relative MSE to dense), 0 = logits only */
  hintWeight: number;
  onEpoch?: (e: EpochLog) => void;
}

export const DEFAULT_DISTILL: DistillOptions = { maxEpochs: 30, batch: 64, lr: 2e-3, temperature: 2, labelWeight: 0, holdout: 0.2, patience: 8, threads: 0, seed: 1, hintWeight: 1 };

export interface EpochLog {
  epoch: number;
  train_loss: number;
  heldout_kl: number;
  heldout_accuracy?: number;
  seconds: number;
}

export interface HeldOutScore {
  /** mean KL(dense || model) of the softmax (or sigmoid) outputs at T = 1; toward dense outputs, their mean relative squared error */
  kl: number;
  accuracy?: number;
}

export interface DistillResult {
  /** the best epoch's weights, or the input model when no epoch beat it */
  model: ModelProto;
  improved: boolean;
  heldoutCount: number;
  trainCount: number;
  before: HeldOutScore;
  after: HeldOutScore;
  epochs: EpochLog[];
  /** 0 = the input model */
  bestEpoch: number;
  stopped: 'epochs' | 'patience' | 'cut-short';
  trainables: number;
  parameters: number;
}

/** held-out KL this many times the best so far means the learning rate is too high, not noise */
const BACKTRACK = 1.25;
/** a held-out gain of at least this fraction since the last clear one restarts the patience */
export const CLEAR_HELDOUT_GAIN = 0.02;

/** A seeded permutation of 0..n-1 (an LCG driving Fisher-Yates; runs are reproducible). */
function permutation(n: number, seed: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  let s = seed >>> 0 || 1;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

function rows(all: Float32Array, idx: readonly number[], width: number): Float32Array {
  const out = new Float32Array(idx.length * width);
  idx.forEach((r, k) => out.set(all.subarray(r * width, (r + 1) * width), k * width));
  return out;
}

type OrtTensor = InstanceType<ReturnType<typeof onnxruntime>['ort']['Tensor']>;

function dataFeeds(ds: Dataset): Record<string, OrtTensor> {
  const { ort } = onnxruntime();
  const feeds: Record<string, OrtTensor> = {};
  for (const [name, arr] of ds.inputs) feeds[name] = new ort.Tensor(arr.dtype as never, arr.data as never, arr.dims);
  return feeds;
}

function paramFeeds(params: readonly Trainable[]): Record<string, OrtTensor> {
  const { ort } = onnxruntime();
  return Object.fromEntries(params.map((p) => [p.name, new ort.Tensor('float32', p.values, p.dims)]));
}

/**
 * Knowledge distillation of a pruned model toward its dense original on the calibration set: Adam on
 * every float parameter (pruned weights masked) against T^2 KL(teacher || student) at temperature T,
 * plus cross-entropy with the labels when given. Gradients come from a training-step ONNX graph
 * (trainGraph.ts) run in onnxruntime. A held-out part of the calibration set picks the best epoch, so
 * the result is never worse than the input on data it was not trained on. The loss is taken on the
 * head's scores: over classes for a softmax or logits output, per decision for a sigmoid. A model whose
 * inputs fix the batch trains at that batch, summing the gradients of as many runs as make up one step.
 * Throws UnsupportedOp when the model holds an op without a gradient rule, computes in another
 * precision than float32, or its opset lacks an op a gradient needs.
 */
export async function distill(
  dense: ModelProto,
  student: ModelProto,
  calib: Dataset,
  masked: ReadonlySet<string>,
  opts: DistillOptions = DEFAULT_DISTILL,
  target: Head | DenseOutputs = defaultHead(student),
): Promise<DistillResult> {
  const { ort } = onnxruntime();
  const matched = 'outputs' in target ? target.outputs : [];
  // classifier heads are matched on their scores, other models on their outputs (the same float32 the loss is taken in)
  const head = 'outputs' in target ? undefined : target;
  const types = elementTypes(new GraphIndex(student.graph!));
  for (const t of head ? [head.scores] : matched) {
    const type = types.get(t) ?? DataType.FLOAT;
    if (type !== DataType.FLOAT) throw new UnsupportedOp({ kind: 'precision', tensor: t, type: dataTypeName(type).toLowerCase() });
  }
  const params = selectTrainables(student, masked);
  if (params.length === 0) throw new UnsupportedOp({ kind: 'no-parameters' });
  const loss: LossKind = !head ? 'outputs' : head.task === 'multiclass' ? 'softmax' : 'sigmoid';
  const n = calib.count;
  const order = permutation(n, opts.seed);
  const heldoutCount = n >= 50 ? Math.round(n * opts.holdout) : 0;
  const heldIdx = heldoutCount > 0 ? order.slice(0, heldoutCount) : order;
  const trainIdx = heldoutCount > 0 ? order.slice(heldoutCount) : order;
  const fixed = fixedBatch(modelInputs(student, 'model'), 'model');
  // a fixed-batch model runs `fixed` samples at a time: one step is `runs` of them, gradients summed
  const micro = fixed ?? Math.min(opts.batch, trainIdx.length);
  const runs = fixed === undefined ? 1 : Math.max(1, Math.floor(Math.min(opts.batch, trainIdx.length) / fixed));
  const batch = micro * runs;
  const stepsPerEpoch = Math.floor(trainIdx.length / batch);

  // built before anything runs, so an unsupported op is refused at once
  const hintCandidates = opts.hintWeight > 0 ? hintTensors(dense, student, masked) : [];
  const tg = buildTrainGraph(student, params, { batch: micro, scores: head?.scores, loss, outputs: matched, temperature: opts.temperature, labelWeight: calib.labels && head ? opts.labelWeight : 0, masked, hints: hintCandidates });
  const ev = buildEvalGraph(student, params, head ? head.scores : matched);
  const width = tg.width;
  const teacherDims = tg.targetDims;
  // the matched outputs count alike, each by its relative squared error; pruned layers' outputs by the hint weight
  const hintWeight = (t: string): number => (matched.includes(t) ? 1 : opts.hintWeight);

  const teacherLogits = head ? await teacherOutputs(dense, calib, opts.threads, [head.scores]) : undefined;
  const scoresOf = (logits: Float32Array | undefined, temperature: number): Float32Array =>
    !logits ? new Float32Array(0) : Float32Array.from(loss === 'softmax' ? softmaxRows(logits, n, width, temperature) : sigmoidValues(logits, temperature));
  const teacherT = scoresOf(teacherLogits?.get(head?.scores ?? ''), opts.temperature);
  const teacher1 = scoresOf(teacherLogits?.get(head?.scores ?? ''), 1);
  // label targets in the loss's own form: one-hot rows over classes, or each decision's 0/1
  const targets = calib.labels && head ? (loss === 'softmax' ? oneHot(calib.labels, n, width) : Float32Array.from(calib.labels)) : undefined;
  const held = takeSamples(calib, heldIdx);
  const heldDense = head ? undefined : await teacherOutputs(dense, held, opts.threads, matched);

  const labelled = tg.model.graph!.input.some((i) => i.name === LABEL_INPUT);
  const train = await sessionFromModel(tg.model, opts.threads);
  const evalSession = await sessionFromModel(ev.model, opts.threads);
  const denseOutputs = new Set(dense.graph!.output.map((o) => o.name));
  const hintSession = tg.hints.length > 0 ? await sessionFromModel(withExtraOutputs(dense, tg.hints.filter((t) => !denseOutputs.has(t))), opts.threads) : undefined;
  try {
    const score = async (): Promise<HeldOutScore> =>
      heldDense
        ? { kl: relativeSquaredError(await captureWithParams(evalSession, matched, held, params, boundedBatch(student, 256)), heldDense) }
        : scoreHeldOut(evalSession, ev.logits, held, rows(teacher1, heldIdx, width), params, loss, width, boundedBatch(student, 256));
    const before = await score();
    let best = { score: before, epoch: 0, values: params.map((p) => Float32Array.from(p.values)) };
    let adam = new Adam(tg.params);
    let lrScale = 1;
    const epochs: EpochLog[] = [];
    const totalSteps = opts.maxEpochs * stepsPerEpoch;
    let step = 0;
    const patience = new EarlyStop(before.kl, opts.patience, CLEAR_HELDOUT_GAIN);
    let stopped: DistillResult['stopped'] = 'epochs';
    for (let epoch = 1; epoch <= opts.maxEpochs && stopped === 'epochs'; epoch++) {
      const t0 = performance.now();
      const shuffled = permutation(trainIdx.length, opts.seed + epoch).map((i) => trainIdx[i]);
      let lossSum = 0;
      let batches = 0;
      for (let s = 0; s < stepsPerEpoch; s++) {
        if (opts.stop?.passed()) {
          stopped = 'cut-short';
          break;
        }
        let grads: Float32Array[] | undefined;
        for (let r = 0; r < runs; r++) {
          const idx = shuffled.slice(s * batch + r * micro, s * batch + (r + 1) * micro);
          const x = takeSamples(calib, idx);
          const pt = rows(teacherT, idx, width);
          const oh = targets && labelled ? rows(targets, idx, width) : undefined;
          const feeds: Record<string, OrtTensor> = { ...dataFeeds(x), ...paramFeeds(params) };
          if (head) feeds[TEACHER_INPUT] = new ort.Tensor('float32', pt, teacherDims);
          if (oh) feeds[LABEL_INPUT] = new ort.Tensor('float32', oh, teacherDims);
          const hintTargets = new Map<string, Float32Array>();
          if (hintSession) {
            const hinted = await hintSession.run(dataFeeds(x), tg.hints);
            for (const t of tg.hints) {
              const d = copyFloatValues(hinted[t]);
              let ms = 0;
              for (let i = 0; i < d.length; i++) ms += d[i] * d[i];
              feeds[hintInput(t)] = new ort.Tensor('float32', d, hinted[t].dims as number[]);
              hinted[t].dispose();
              hintTargets.set(t, d);
              // relative MSE: each layer counts alike whatever its scale
              feeds[hintScale(t)] = new ort.Tensor('float32', Float32Array.of(ms > 0 ? hintWeight(t) / ms : 0), [1]);
            }
          }
          const out = await train.run(feeds);
          const z = out[tg.logits].data as Float32Array;
          lossSum +=
            (loss === 'outputs'
              ? (relativeSquaredError(new Map(matched.map((t) => [t, out[t].data as Float32Array])), hintTargets) * matched.length) / 2
              : loss === 'softmax'
                ? distillLoss(z, pt, oh, micro, width, opts.temperature, oh ? opts.labelWeight : 0)
                : sigmoidDistillLoss(z, pt, oh, micro, opts.temperature, oh ? opts.labelWeight : 0)) / runs;
          const g = tg.gradOutputs.map((o) => out[o].data as Float32Array);
          if (runs === 1) grads = g;
          else if (!grads) grads = g.map((v) => Float32Array.from(v, (x) => x / runs));
          else g.forEach((v, k) => { for (let i = 0; i < v.length; i++) grads![k][i] += v[i] / runs; });
          if (runs === 1) {
            adamStep(adam, grads!, lrScale, step, totalSteps);
          }
          for (const t of Object.values(out)) t.dispose();
        }
        if (runs > 1) adamStep(adam, grads!, lrScale, step, totalSteps);
        batches++;
        step++;
      }
      if (batches === 0) break;
      const now = await score();
      const log: EpochLog = { epoch, train_loss: lossSum / batches, heldout_kl: now.kl, seconds: (performance.now() - t0) / 1000 };
      if (now.accuracy !== undefined) log.heldout_accuracy = now.accuracy;
      epochs.push(log);
      opts.onEpoch?.(log);
      const seen = patience.observe(now.kl);
      if (seen.stop && stopped === 'epochs') stopped = 'patience';
      if (seen.best) {
        best = { score: now, epoch, values: params.map((p) => Float32Array.from(p.values)) };
      } else {
        // a step size that made things clearly worse (typical when reconstruction already left the model
        // close to dense): back to the best weights with half the learning rate and fresh moments
        if (now.kl > BACKTRACK * best.score.kl) {
          best.values.forEach((v, k) => params[k].values.set(v));
          lrScale /= 2;
          adam = new Adam(tg.params);
        }
      }
    }
    const improved = best.epoch > 0;
    const model = improved ? withParams(student, params.map((p, k) => ({ name: p.name, values: best.values[k] }))) : student;
    return {
      model,
      improved,
      heldoutCount,
      trainCount: trainIdx.length,
      before,
      after: best.score,
      epochs,
      bestEpoch: best.epoch,
      stopped,
      trainables: tg.params.length,
      parameters: tg.params.reduce((a, p) => a + p.values.length, 0),
    };
  } finally {
    await train.release();
    await evalSession.release();
    await hintSession?.release();
  }

  function adamStep(a: Adam, grads: Float32Array[], scale: number, at: number, total: number): void {
    a.step(grads, scale * opts.lr * 0.5 * (1 + Math.cos((Math.PI * at) / Math.max(1, total))));
  }
}

/** One-hot rows [n, classes] of class-id labels. */
function oneHot(labels: Int32Array, n: number, classes: number): Float32Array {
  const out = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) if (labels[i] < classes) out[i * classes + labels[i]] = 1;
  return out;
}

/** Outputs of the layers whose weights were pruned, where dense and pruned models agree on the name and shape. */
function hintTensors(dense: ModelProto, student: ModelProto, masked: ReadonlySet<string>): string[] {
  const s = new GraphIndex(student.graph!);
  const d = new GraphIndex(dense.graph!);
  const ss = inferShapes(s, 1).shapes;
  const ds = inferShapes(d, 1).shapes;
  const out: string[] = [];
  for (const n of s.order) {
    if (!n.input.some((i) => masked.has(i))) continue;
    const t = n.output[0];
    const a = ss.get(t);
    const b = ds.get(t);
    if (a && b && d.producer.has(t) && a.length === b.length && a.every((v, i) => v === b[i])) out.push(t);
  }
  return out;
}

/** Outputs of the dense model (its scores: the input of a final Softmax or Sigmoid, or its logits; or graph outputs) on every sample. */
async function teacherOutputs(dense: ModelProto, data: Dataset, threads: number, names: readonly string[]): Promise<Map<string, Float32Array>> {
  const outputs = new Set(dense.graph!.output.map((o) => o.name));
  const session = await sessionFromModel(withExtraOutputs(dense, names.filter((t) => !outputs.has(t))), threads);
  try {
    const got = await captureActivations(session, data, names, boundedBatch(dense, 128));
    return new Map(names.map((t) => [t, got.get(t)!.data]));
  } finally {
    await session.release();
  }
}

async function scoreHeldOut(session: OrtSession, logits: string, held: Dataset, teacher: Float32Array, params: readonly Trainable[], loss: LossKind, width: number, step: number): Promise<HeldOutScore> {
  const out = (await captureWithParams(session, [logits], held, params, step)).get(logits)!;
  if (loss === 'sigmoid') return sigmoidHeldOut(out, teacher, held.labels, held.count);
  const ps = softmaxRows(out, held.count, width, 1);
  let kl = 0;
  let correct = 0;
  for (let r = 0; r < held.count; r++) {
    let arg = 0;
    for (let k = 0; k < width; k++) {
      const i = r * width + k;
      if (teacher[i] > 0) kl += teacher[i] * (Math.log(teacher[i]) - Math.log(Math.max(ps[i], 1e-30)));
      if (ps[i] > ps[r * width + arg]) arg = k;
    }
    if (held.labels && held.labels[r] === arg) correct++;
  }
  const s: HeldOutScore = { kl: kl / held.count };
  if (held.labels) s.accuracy = correct / held.count;
  return s;
}

async function captureWithParams(session: OrtSession, names: readonly string[], data: Dataset, params: readonly Trainable[], step: number): Promise<Map<string, Float32Array>> {
  const got = await captureActivations(session, data, names, step, paramFeeds(params));
  return new Map(names.map((t) => [t, got.get(t)!.data]));
}
