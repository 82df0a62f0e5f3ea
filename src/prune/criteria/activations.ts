import type { Dataset } from '../../data/dataset.js';
import { sliceBatch } from '../../data/dataset.js';
import { onnxruntime } from '../../onnx/runtime/ort.js';
import { serializeModel } from '../../onnx/model.js';
import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import { withExtraOutputs } from '../../onnx/subgraph.js';

/**
 * Mean |x| per index of one axis for each named intermediate tensor, over calibration samples. The
 * tensors are captured by adding them as graph outputs and running onnxruntime once per batch.
 */
export async function channelMeanAbs(model: ModelProto, tensors: ReadonlyMap<string, number>, calib: Dataset, maxSamples = 256, batch = 64): Promise<Map<string, Float64Array>> {
  const probe = withExtraOutputs(model, [...tensors.keys()]);
  const { ort } = onnxruntime();
  const session = await ort.InferenceSession.create(serializeModel(probe), { executionProviders: ['cpu'], graphOptimizationLevel: 'disabled' });
  const sums = new Map<string, Float64Array>();
  let seen = 0;
  try {
    const n = Math.min(calib.count, maxSamples);
    for (let start = 0; start < n; start += batch) {
      const end = Math.min(n, start + batch);
      const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
      for (const [name, arr] of sliceBatch(calib, start, end)) feeds[name] = new ort.Tensor(arr.dtype, arr.data as never, arr.dims);
      const result = await session.run(feeds, [...tensors.keys()]);
      for (const [name, axis] of tensors) {
        const t = result[name];
        const dims = t.dims as readonly number[];
        const data = t.data as Float32Array;
        const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
        const k = dims[axis];
        let acc = sums.get(name);
        if (!acc) sums.set(name, (acc = new Float64Array(k)));
        for (let i = 0; i < data.length; i++) acc[Math.floor(i / inner) % k] += Math.abs(data[i]);
      }
      for (const t of Object.values(result)) t.dispose();
      seen += end - start;
    }
  } finally {
    await session.release();
  }
  for (const [name, acc] of sums) {
    // mean over samples and the other axes of one sample
    const perSample = acc.length;
    void perSample;
    for (let i = 0; i < acc.length; i++) acc[i] /= Math.max(1, seen);
  }
  return sums;
}
