import type { Dataset } from '../data/dataset.js';
import { runBatches } from '../onnx/runtime/batches.js';
import type { OrtSession } from '../onnx/runtime/ort.js';
import { captureActivations } from '../onnx/runtime/session.js';
import { FidelityAccumulator, type FidelityOutput, type OutputFidelity } from './fidelity.js';

/** The reference model's compared outputs on the whole set, as float32 read by their real type, samples first. */
export type ReferenceOutputs = Map<string, Float32Array>;

/** Runs the reference (dense) model once over the set and keeps every compared output. */
export async function referenceOutputs(session: OrtSession, data: Dataset, batch: number, outputs: readonly FidelityOutput[]): Promise<ReferenceOutputs> {
  const got = await captureActivations(session, data, outputs.map((o) => o.name), batch);
  return new Map(outputs.map((o) => [o.name, got.get(o.name)!.data]));
}

/**
 * Each compared output of the model in `session` against the reference's on the same samples, batch by
 * batch: the numbers of `OutputFidelity`.
 */
export async function measureFidelity(session: OrtSession, data: Dataset, batch: number, outputs: readonly FidelityOutput[], reference: ReferenceOutputs, onBatch?: (done: number) => void): Promise<OutputFidelity[]> {
  const acc = outputs.map((o) => new FidelityAccumulator(o.name, o.classes !== undefined ? { classes: o.classes } : undefined));
  await runBatches(session, data, batch, outputs.map((o) => o.name), (values, first, count) => {
    outputs.forEach((o, k) => {
      const v = values.get(o.name)!.data;
      const ref = reference.get(o.name)!;
      const per = v.length / count;
      acc[k].add(ref.subarray(first * per, (first + count) * per), v, count);
    });
    onBatch?.(first + count);
  });
  return acc.map((a) => a.result());
}
