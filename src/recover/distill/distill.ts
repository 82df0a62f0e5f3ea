import { takeSamples, type Dataset } from '../../data/dataset.js';
import type { SafetyStop } from '../work.js';
import { onnxruntime, type OrtSession } from '../../onnx/runtime/ort.js';
import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import { captureActivations, sessionFromModel } from '../../onnx/runtime/session.js';
import { withExtraOutputs } from '../../onnx/subgraph.js';
import { Adam } from './adam.js';
import { boundedBatch } from '../../onnx/runtime/activationBudget.js';
import { UnsupportedOp } from './gradients.js';
import { distillLoss, softmaxRows } from './loss.js';
import { GraphIndex } from '../../onnx/graph.js';
import { inferShapes } from '../../onnx/shapes.js';
import { buildEvalGraph, buildTrainGraph, hintInput, hintScale, LABEL_INPUT, logitsTensor, selectTrainables, TEACHER_INPUT, withParams, type Trainable } from './trainGraph.js';

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
  /** stop after this many epochs without a better held-out score */
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
  /** mean KL(dense || model) of the softmax outputs at T = 1 */
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
 * the result is never worse than the input on data it was not trained on. Throws UnsupportedOp when
 * the model holds an op without a gradient rule.
 */
export async function distill(dense: ModelProto, student: ModelProto, calib: Dataset, masked: ReadonlySet<string>, opts: DistillOptions = DEFAULT_DISTILL): Promise<DistillResult> {
  const { ort } = onnxruntime();
  const params = selectTrainables(student, masked);
  if (params.length === 0) throw new UnsupportedOp('model', 'graph', 'no float32 parameters to train');
  const n = calib.count;
  const order = permutation(n, opts.seed);
  const heldoutCount = n >= 50 ? Math.round(n * opts.holdout) : 0;
  const heldIdx = heldoutCount > 0 ? order.slice(0, heldoutCount) : order;
  const trainIdx = heldoutCount > 0 ? order.slice(heldoutCount) : order;
  const batch = Math.min(opts.batch, trainIdx.length);
  const stepsPerEpoch = Math.floor(trainIdx.length / batch);

  // built before anything runs, so an unsupported op is refused at once
  const hintCandidates = opts.hintWeight > 0 ? hintTensors(dense, student, masked) : [];
  const tg = buildTrainGraph(student, params, { batch, temperature: opts.temperature, labelWeight: calib.labels ? opts.labelWeight : 0, masked, hints: hintCandidates });
  const ev = buildEvalGraph(student, params);
  const classes = tg.classes;

  const teacherLogits = await teacherOutputs(dense, calib, opts.threads);
  const teacherT = Float32Array.from(softmaxRows(teacherLogits, n, classes, opts.temperature));
  const teacher1 = Float32Array.from(softmaxRows(teacherLogits, n, classes, 1));
  const onehot = calib.labels ? new Float32Array(n * classes) : undefined;
  if (onehot) calib.labels!.forEach((y, i) => y < classes && (onehot[i * classes + y] = 1));
  const held = takeSamples(calib, heldIdx);

  const labelled = tg.model.graph!.input.some((i) => i.name === LABEL_INPUT);
  const train = await sessionFromModel(tg.model, opts.threads);
  const evalSession = await sessionFromModel(ev.model, opts.threads);
  const hintSession = tg.hints.length > 0 ? await sessionFromModel(withExtraOutputs(dense, tg.hints), opts.threads) : undefined;
  try {
    const score = async (): Promise<HeldOutScore> => scoreHeldOut(evalSession, ev.logits, held, rows(teacher1, heldIdx, classes), params, classes, boundedBatch(student, 256));
    const before = await score();
    let best = { score: before, epoch: 0, values: params.map((p) => Float32Array.from(p.values)) };
    let adam = new Adam(tg.params);
    let lrScale = 1;
    const epochs: EpochLog[] = [];
    const totalSteps = opts.maxEpochs * stepsPerEpoch;
    let step = 0;
    let stale = 0;
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
        const idx = shuffled.slice(s * batch, (s + 1) * batch);
        const x = takeSamples(calib, idx);
        const pt = rows(teacherT, idx, classes);
        const oh = onehot && labelled ? rows(onehot, idx, classes) : undefined;
        const feeds: Record<string, OrtTensor> = { ...dataFeeds(x), ...paramFeeds(params) };
        feeds[TEACHER_INPUT] = new ort.Tensor('float32', pt, [batch, classes]);
        if (oh) feeds[LABEL_INPUT] = new ort.Tensor('float32', oh, [batch, classes]);
        if (hintSession) {
          const targets = await hintSession.run(dataFeeds(x), tg.hints);
          for (const t of tg.hints) {
            const d = Float32Array.from(targets[t].data as Float32Array);
            targets[t].dispose();
            let ms = 0;
            for (let i = 0; i < d.length; i++) ms += d[i] * d[i];
            feeds[hintInput(t)] = new ort.Tensor('float32', d, targets[t].dims as number[]);
            // relative MSE: each layer counts alike whatever its scale
            feeds[hintScale(t)] = new ort.Tensor('float32', Float32Array.of(ms > 0 ? opts.hintWeight / ms : 0), [1]);
          }
        }
        const out = await train.run(feeds);
        lossSum += distillLoss(out[tg.logits].data as Float32Array, pt, oh, batch, classes, opts.temperature, oh ? opts.labelWeight : 0);
        batches++;
        const grads = tg.gradOutputs.map((o) => out[o].data as Float32Array);
        const lr = lrScale * opts.lr * 0.5 * (1 + Math.cos((Math.PI * step) / Math.max(1, totalSteps)));
        adam.step(grads, lr);
        for (const t of Object.values(out)) t.dispose();
        step++;
      }
      if (batches === 0) break;
      const now = await score();
      const log: EpochLog = { epoch, train_loss: lossSum / batches, heldout_kl: now.kl, seconds: (performance.now() - t0) / 1000 };
      if (now.accuracy !== undefined) log.heldout_accuracy = now.accuracy;
      epochs.push(log);
      opts.onEpoch?.(log);
      if (now.kl < best.score.kl) {
        best = { score: now, epoch, values: params.map((p) => Float32Array.from(p.values)) };
        stale = 0;
      } else {
        if (++stale >= opts.patience && stopped === 'epochs') stopped = 'patience';
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

/** The dense model's logits (the input of a final Softmax, if any) on every calibration sample. */
async function teacherOutputs(dense: ModelProto, calib: Dataset, threads: number): Promise<Float32Array> {
  const name = logitsTensor(dense);
  const session = await sessionFromModel(withExtraOutputs(dense, [name]), threads);
  try {
    return (await captureActivations(session, calib, [name], boundedBatch(dense, 128))).get(name)!.data;
  } finally {
    await session.release();
  }
}

async function scoreHeldOut(session: OrtSession, logits: string, held: Dataset, teacher: Float32Array, params: readonly Trainable[], classes: number, step: number): Promise<HeldOutScore> {
  const out = await captureWithParams(session, logits, held, params, step);
  const ps = softmaxRows(out, held.count, classes, 1);
  let kl = 0;
  let correct = 0;
  for (let r = 0; r < held.count; r++) {
    let arg = 0;
    for (let k = 0; k < classes; k++) {
      const i = r * classes + k;
      if (teacher[i] > 0) kl += teacher[i] * (Math.log(teacher[i]) - Math.log(Math.max(ps[i], 1e-30)));
      if (ps[i] > ps[r * classes + arg]) arg = k;
    }
    if (held.labels && held.labels[r] === arg) correct++;
  }
  const s: HeldOutScore = { kl: kl / held.count };
  if (held.labels) s.accuracy = correct / held.count;
  return s;
}

async function captureWithParams(session: OrtSession, logits: string, data: Dataset, params: readonly Trainable[], step: number): Promise<Float32Array> {
  const chunks: Float32Array[] = [];
  const pf = paramFeeds(params);
  for (let start = 0; start < data.count; start += step) {
    const idx = Array.from({ length: Math.min(step, data.count - start) }, (_, i) => start + i);
    const out = await session.run({ ...dataFeeds(takeSamples(data, idx)), ...pf }, [logits]);
    chunks.push(Float32Array.from(out[logits].data as Float32Array));
    out[logits].dispose();
  }
  const all = new Float32Array(chunks.reduce((a, c) => a + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  return all;
}
