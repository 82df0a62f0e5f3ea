import * as ort from 'onnxruntime-node';
import { readArrays } from '../../src/data/npz.js';

/**
 * Top-1 accuracy computed the plainest possible way, sharing no code with src/measure: one onnxruntime
 * session with default options, argmax per row. The ledger's numbers must match it.
 */
export async function referenceAccuracy(modelPath: string, dataPath: string): Promise<{ accuracy: number; pred: number[] }> {
  const arrays = readArrays(dataPath);
  const x = arrays.get('x')!;
  const y = arrays.get('y')!;
  const s = await ort.InferenceSession.create(modelPath);
  const n = x.shape[0];
  const row = x.data.length / n;
  const pred: number[] = [];
  for (let start = 0; start < n; start += 500) {
    const end = Math.min(n, start + 500);
    const t = new ort.Tensor('float32', (x.data as Float32Array).slice(start * row, end * row), [end - start, ...x.shape.slice(1)]);
    const out = (await s.run({ [s.inputNames[0]]: t }))[s.outputNames[0]];
    const c = out.dims[1];
    const v = out.data as Float32Array;
    for (let i = 0; i < end - start; i++) {
      let best = 0;
      for (let k = 1; k < c; k++) if (v[i * c + k] > v[i * c + best]) best = k;
      pred.push(best);
    }
  }
  await s.release();
  let hit = 0;
  for (let i = 0; i < n; i++) if (pred[i] === Number(y.data[i])) hit++;
  return { accuracy: hit / n, pred };
}
