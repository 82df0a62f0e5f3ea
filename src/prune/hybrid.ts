import type { Config } from '../config/schema.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { magnitudePrune } from './magnitude.js';
import { prunableWeights, type PrunableWeight } from './prunable.js';

const size = (ws: readonly PrunableWeight[]): number => ws.reduce((n, w) => n + w.dims.reduce((a, b) => a * b, 1), 0);

/**
 * Hybrid's magnitude half after its channel cut: zero the smallest surviving weights of `model` until
 * `target` of the DENSE model's prunable weights are gone (removed channels count). Zeros already there
 * are the smallest |w|, so they stay zero. `fraction` is the share of the remaining weights zeroed.
 */
export function topUpMagnitude(
  model: ModelProto,
  dense: readonly PrunableWeight[],
  target: number,
  config: Pick<Config, 'exclude' | 'keepFirstLayer' | 'keepLastLayer'>,
  scope: 'global' | 'layer',
): { model: ModelProto; fraction: number } {
  const rest = prunableWeights(model, { exclude: config.exclude, keepFirstLayer: config.keepFirstLayer, keepLastLayer: config.keepLastLayer });
  const restTotal = size(rest);
  const denseTotal = size(dense);
  const extra = Math.max(0, target * denseTotal - (denseTotal - restTotal));
  const fraction = restTotal > 0 ? Math.min(1, extra / restTotal) : 0;
  return { model: magnitudePrune(model, rest, fraction, scope).model, fraction };
}
