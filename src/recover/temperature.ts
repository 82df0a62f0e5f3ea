import { boundedBatch } from '../onnx/runtime/activationBudget.js';
import { create } from '@bufbuild/protobuf';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { defaultHead, evaluateClassifier, type Predictions } from '../onnx/runtime/classifier.js';
import type { Head } from '../onnx/head.js';
import { elementTypes } from '../onnx/elementTypes.js';
import { expectedCalibrationError } from '../onnx/runtime/scores.js';
import { GraphIndex } from '../onnx/graph.js';
import { cloneModel } from '../onnx/model.js';
import { NodeProtoSchema, type ModelProto } from '../onnx/proto/onnx_pb.js';
import { DataType, makeTypedFloatTensor } from '../onnx/tensor.js';
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
 * Fit T for a model on the labelled calibration set, on the scores whose softmax is the model's
 * distribution (evaluateClassifier's logits): for a Softmax or LogSoftmax output these are its logits up to
 * a per-row shift softmax ignores; a sigmoid decision is the two-way softmax of [0, z].
 */
export async function calibrateTemperature(model: ModelProto, calib: Dataset, threads = 0, head: Head = defaultHead(model)): Promise<TemperatureFit> {
  if (!calib.labels) throw new UserError(`${calib.path}: temperature scaling needs labels; add y=labels to the calibration .npz`);
  const session = await sessionFromModel(model, threads);
  let p: Predictions;
  try {
    p = await evaluateClassifier(session, calib, { batchSize: boundedBatch(model, 256), head, keepLogits: true, modelPath: 'calibration' });
  } finally {
    await session.release();
  }
  return fitTemperature(p.logits!, p.truth, p.choices);
}

/**
 * A copy of the model whose scores are divided by T before the final Softmax, LogSoftmax or Sigmoid
 * (or before the output, for logits), so onnxruntime serves calibrated probabilities. The output keeps
 * its name; the divisor has the scores' own element type, so a float16 model stays valid.
 */
export function bakeTemperature(model: ModelProto, temperature: number, head: Head = defaultHead(model)): ModelProto {
  const out = cloneModel(model);
  const g = out.graph!;
  const index = new GraphIndex(g);
  const target = head.scores;
  const producer = index.producer.get(target);
  if (!producer) throw new UserError(`--bake-temperature: the scores '${target}' of output '${head.output}' are not produced by a node; cannot insert the scaling`);
  const taken = new Set([...index.producer.keys(), ...index.initializers.keys(), ...g.input.map((i) => i.name)]);
  const unique = (base: string) => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}${k}`;
    taken.add(name);
    return name;
  };
  const type = elementTypes(index).get(target) ?? DataType.FLOAT;
  const unscaled = unique(`${target}_before_temperature`);
  const tName = unique('prune_guard_temperature');
  producer.output[producer.output.indexOf(target)] = unscaled;
  g.initializer.push(makeTypedFloatTensor(tName, type, [], Float32Array.of(temperature)));
  const div = create(NodeProtoSchema, { name: unique('prune_guard_temperature_scaling'), opType: 'Div', input: [unscaled, tName], output: [target] });
  // keep topological order: right after the producer
  g.node.splice(g.node.indexOf(producer) + 1, 0, div);
  return out;
}
