import type { Dataset } from '../data/dataset.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { boundedBatch } from '../onnx/runtime/activationBudget.js';
import { sessionFromModel, streamActivations } from '../onnx/runtime/session.js';
import { withExtraOutputs } from '../onnx/subgraph.js';
import { RangeCalibrator, type CalibratorName, type Range } from './calibrate.js';

/**
 * Calibrated ranges of `tensors` on `calib`, captured through onnxruntime batch by batch (never the
 * whole set's activations at once). Histogram calibrators run the set twice: once for each tensor's
 * extent, once for its histogram.
 */
export async function calibrateRanges(model: ModelProto, calib: Dataset, tensors: readonly string[], method: CalibratorName, threads = 0): Promise<Map<string, Range>> {
  const calibrator = new RangeCalibrator(method);
  const session = await sessionFromModel(withExtraOutputs(model, tensors), threads, { lean: true });
  try {
    const batch = boundedBatch(model, 128);
    const pass = () =>
      streamActivations([{ session, fetch: tensors }], calib, batch, ([acts]) => {
        for (const [name, a] of acts) calibrator.observe(name, a.data);
      });
    await pass();
    if (calibrator.needsSecondPass) {
      calibrator.startSecondPass();
      await pass();
    }
  } finally {
    await session.release();
  }
  return calibrator.ranges();
}
