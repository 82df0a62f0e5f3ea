import type { Dataset } from '../data/dataset.js';
import { defaultHead, evaluateClassifier } from '../onnx/runtime/classifier.js';
import type { Head } from '../onnx/head.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { sessionFromModel } from '../onnx/runtime/session.js';
import { boundedBatch } from '../onnx/runtime/activationBudget.js';

export interface CalibScore {
  accuracy: number;
  nll: number;
}

/**
 * Accuracy and mean NLL (per decision: per sample, or per sample and label for a multi-label sigmoid) on the labelled calibration set: what recovery decisions are made on, so
 * the evaluation set never influences which model ships.
 */
export async function calibScore(model: ModelProto, calib: Dataset, threads = 0, head: Head = defaultHead(model)): Promise<CalibScore> {
  // lean: recovery scores a full model several times while the dense and pruned protos are alive
  const session = await sessionFromModel(model, threads, { lean: true });
  try {
    const p = await evaluateClassifier(session, calib, { batchSize: boundedBatch(model, 256), head, modelPath: 'calibration' });
    let correct = 0;
    let nll = 0;
    const n = p.correct.length;
    for (let i = 0; i < n; i++) {
      correct += p.correct[i];
      nll -= p.logProbLabel[i];
    }
    return { accuracy: correct / n, nll: nll / n };
  } finally {
    await session.release();
  }
}

/** Lower NLL is better; accuracy breaks exact ties. */
export function better(a: CalibScore, b: CalibScore): boolean {
  return a.nll < b.nll || (a.nll === b.nll && a.accuracy > b.accuracy);
}
