import type { NodeProto } from '../onnx/proto/onnx_pb.js';
import { attrFloat, type GraphIndex } from '../onnx/graph.js';
import { tensorToFloat32 } from '../onnx/tensor.js';
import { ridgeSolve } from './ridge.js';
import { crossGram, timesTransposed } from '../onnx/runtime/gemm.js';

/**
 * A layer whose output only matters through a ReLU, possibly after a BatchNormalization:
 * out = relu(a * y + c) per output channel. Fitting y linearly spends effort on negative values the
 * ReLU throws away; with the gate known, the refit can match what the next layer actually sees.
 */
export interface ReluGate {
  a: Float64Array;
  c: Float64Array;
}

/** The ReLU gate after `node` (Conv/Gemm -> [BatchNormalization ->] Relu, each the only reader), or null. */
export function reluGate(index: GraphIndex, node: NodeProto, channels: number): ReluGate | null {
  const only = (tensor: string): NodeProto | undefined => {
    const c = index.consumersOf(tensor);
    return c.length === 1 ? c[0] : undefined;
  };
  let next = only(node.output[0]);
  const a = new Float64Array(channels).fill(1);
  const c = new Float64Array(channels);
  if (next?.opType === 'BatchNormalization' && next.output.length === 1) {
    const [scale, bias, mean, variance] = next.input.slice(1, 5).map((n) => index.initializers.get(n));
    if (!scale || !bias || !mean || !variance) return null;
    const [s, b, m, v] = [scale, bias, mean, variance].map((t) => tensorToFloat32(t));
    if (s.length !== channels) return null;
    const eps = attrFloat(next, 'epsilon', 1e-5);
    for (let k = 0; k < channels; k++) {
      a[k] = s[k] / Math.sqrt(v[k] + eps);
      c[k] = b[k] - m[k] * a[k];
    }
    next = only(next.output[0]);
  }
  return next?.opType === 'Relu' ? { a, c } : null;
}

/**
 * Iteratively refit W so that relu(a * W x + c) matches relu(a * y_dense + c): where the dense unit is
 * off, the target becomes whatever keeps the refit unit off too (its own value, or the ReLU's
 * threshold when it is on), so only the error the ReLU passes on is fit. Each round is a ridge
 * least-squares solve with the same H = X X^T and an updated target.
 * `xp`: [n x cols] pruned-model patches; `yd`: [n x rows] dense outputs; `gate` per row of this group.
 */
export async function reluRefit(xp: Float32Array, yd: Float64Array, n: number, w0: Float64Array, h: Float64Array, rows: number, cols: number, damp: number, gate: ReluGate, rounds = 3): Promise<Float64Array | null> {
  let w = w0;
  const target = new Float32Array(n * rows);
  for (let round = 0; round < rounds; round++) {
    const yp = await timesTransposed(xp, n, Float32Array.from(w), rows, cols);
    for (let i = 0; i < n * rows; i++) {
      const r = i % rows;
      const { a, c } = { a: gate.a[r], c: gate.c[r] };
      if (a === 0 || a * yd[i] + c > 0) target[i] = yd[i];
      else target[i] = a * yp[i] + c <= 0 ? yp[i] : -c / a;
    }
    const g = await crossGram(target, xp, n, rows, cols);
    const next = ridgeSolve(h, g, rows, cols, damp);
    if (!next) return null;
    w = next;
  }
  return w;
}

/** Squared error per row after the gate: relu(a*yd + c) against relu(a*y + c); both [patches x rows]. */
export function gatedRowErrors(yd: Float64Array, y: Float64Array, rows: number, gate: ReluGate): { error: Float64Array; norm: number } {
  const error = new Float64Array(rows);
  let norm = 0;
  for (let i = 0; i < yd.length; i++) {
    const r = i % rows;
    const d = Math.max(0, gate.a[r] * yd[i] + gate.c[r]);
    const p = Math.max(0, gate.a[r] * y[i] + gate.c[r]);
    error[r] += (d - p) ** 2;
    norm += d * d;
  }
  return { error, norm };
}
