import { boundedBatch } from '../onnx/runtime/activationBudget.js';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { endsInSoftmax, evaluateClassifier } from '../onnx/runtime/classifier.js';
import { expectedCalibrationError } from '../onnx/runtime/scores.js';
import { ModelEditor } from '../onnx/edit.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { DataType, FLOAT_TYPES } from '../onnx/tensor.js';
import { sessionFromModel } from '../onnx/runtime/session.js';

export interface TemperatureFit {
  temperature: number;
  nll_before: number;
  nll_after: number;
  ece_before: number;
  ece_after: number;
}

/** Mean NLL and ECE of softmax(logits / t) against the labels. */
export function scaledScores(logits: Float32Array, labels: Int32Array, classes: number, t: number): { nll: number; ece: number } {
  const n = labels.length;
  const confidence = new Float32Array(n);
  const correct = new Uint8Array(n);
  let nll = 0;
  for (let i = 0; i < n; i++) {
    const o = i * classes;
    let max = -Infinity;
    let pred = 0;
    for (let c = 0; c < classes; c++) {
      if (logits[o + c] > max) {
        max = logits[o + c];
        pred = c;
      }
    }
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp((logits[o + c] - max) / t);
    nll -= (logits[o + labels[i]] - max) / t - Math.log(sum);
    confidence[i] = 1 / sum;
    correct[i] = pred === labels[i] ? 1 : 0;
  }
  return { nll: nll / n, ece: expectedCalibrationError(confidence, correct, 15) };
}

/**
 * The temperature minimising calibration-set NLL: golden-section search on log T over [1/20, 20].
 * NLL is convex in 1/T, hence unimodal in log T, so the search finds the minimum.
 */
export function fitTemperature(logits: Float32Array, labels: Int32Array, classes: number): TemperatureFit {
  const nllAt = (logT: number) => scaledScores(logits, labels, classes, Math.exp(logT)).nll;
  const phi = (Math.sqrt(5) - 1) / 2;
  let a = Math.log(1 / 20);
  let b = Math.log(20);
  let c = b - phi * (b - a);
  let d = a + phi * (b - a);
  let fc = nllAt(c);
  let fd = nllAt(d);
  while (b - a > 1e-5) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - phi * (b - a);
      fc = nllAt(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + phi * (b - a);
      fd = nllAt(d);
    }
  }
  const temperature = Math.exp((a + b) / 2);
  const before = scaledScores(logits, labels, classes, 1);
  const after = scaledScores(logits, labels, classes, temperature);
  return { temperature, nll_before: before.nll, nll_after: after.nll, ece_before: before.ece, ece_after: after.ece };
}

/**
 * Fit T for a model on the labelled calibration set. A model that ends in Softmax is scored on
 * log-probabilities, which are its logits up to a per-row shift that softmax ignores.
 */
export async function calibrateTemperature(model: ModelProto, calib: Dataset, threads = 0): Promise<TemperatureFit> {
  if (!calib.labels) throw new UserError(`${calib.path}: temperature scaling needs labels; add y=labels to the calibration .npz`);
  const session = await sessionFromModel(model, threads);
  let logits: Float32Array;
  let classes: number;
  try {
    const probs = endsInSoftmax(model);
    const p = await evaluateClassifier(session, calib, { batchSize: boundedBatch(model, 256), outputsAreProbabilities: probs, keepLogits: true, modelPath: 'calibration' });
    logits = p.logits!;
    classes = p.classes;
    if (probs) for (let i = 0; i < logits.length; i++) logits[i] = Math.log(Math.max(logits[i], 1e-12));
  } finally {
    await session.release();
  }
  return fitTemperature(logits, calib.labels, classes);
}

/**
 * A copy of the model whose output is divided by T before it leaves the graph (before the final
 * Softmax when there is one), so onnxruntime serves calibrated probabilities. The output keeps its name.
 */
export function bakeTemperature(model: ModelProto, temperature: number): ModelProto {
  const ed = ModelEditor.copyOf(model);
  const outputName = ed.graph.output[0].name;
  // the tensor to scale: the Softmax input, or the graph output itself
  const target = endsInSoftmax(ed.model) ? ed.producer(outputName)!.input[0] : outputName;
  if (!ed.producer(target)) throw new UserError(`--bake-temperature: the model output '${outputName}' is not produced by a node; cannot insert the scaling`);
  // T in the output's own float type: Div needs both operands alike (a float16 model divides by a float16 T)
  const declared = ed.graph.output[0].type?.value;
  const elemType = declared?.case === 'tensorType' && FLOAT_TYPES.has(declared.value.elemType) ? declared.value.elemType : DataType.FLOAT;
  const t = ed.addFloatInitializer('prune_guard_temperature', [], Float32Array.of(temperature), elemType);
  ed.insertAfter(target, { opType: 'Div', inputs: [target, t], name: 'prune_guard_temperature_scaling' }, `${target}_before_temperature`);
  return ed.model;
}
