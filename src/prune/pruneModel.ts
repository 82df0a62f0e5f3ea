import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { magnitudePrune } from './magnitude.js';
import { prunableWeights, type PrunableWeight } from './prunable.js';
import { countSparsity } from './sparsity.js';
import { describeStructured } from './structured/describe.js';
import { structuredPrune } from './structured/structuredPrune.js';

export interface PruneContext {
  /** the input model file, for messages */
  modelPath: string;
  calib?: Dataset;
}

export interface PruneOutcome {
  model: ModelProto;
  /** one line for the ledger's step description */
  description: string;
  /** the dense model's prunable weights: sparsity of every later step is counted against them */
  denseWeights: PrunableWeight[];
  /** things the user should know (groups skipped and why, layers kept dense) */
  notes: string[];
}

/** The pruning stage: one method, chosen by config, applied to a copy of the dense model. */
export async function pruneModel(dense: ModelProto, config: Config, ctx: PruneContext): Promise<PruneOutcome> {
  const weights = prunableWeights(dense, { exclude: config.exclude, keepFirstLayer: config.keepFirstLayer, keepLastLayer: config.keepLastLayer });
  if (weights.length === 0) {
    throw new UserError(`${ctx.modelPath}: no prunable Conv, ConvTranspose, Gemm or MatMul weights (after exclude globs); nothing to prune`);
  }
  switch (config.method) {
    case 'unstructured': {
      const r = magnitudePrune(dense, weights, config.sparsity, config.scope);
      return {
        model: r.model,
        description: `unstructured magnitude pruning (${config.scope}) of ${weights.length} weight tensors to ${(config.sparsity * 100).toFixed(1)}%`,
        denseWeights: weights,
        notes: [],
      };
    }
    case 'structured':
    case 'hybrid': {
      const all = prunableWeights(dense, { exclude: [], keepFirstLayer: false, keepLastLayer: false });
      const kept = new Set(weights.map((w) => w.initializer));
      const protectedTensors = new Set(all.map((w) => w.initializer).filter((n) => !kept.has(n)));
      // hybrid: channels take half the target, magnitude pruning of what remains reaches the rest
      const channelSparsity = config.method === 'hybrid' ? config.sparsity / 2 : config.sparsity;
      const r = await structuredPrune(dense, {
        sparsity: channelSparsity, scope: config.scope, roundTo: config.roundTo, criterion: config.criterion, protectedTensors, calib: ctx.calib,
      });
      let description = describeStructured(dense, r, { criterion: config.criterion, scope: config.scope, sparsity: channelSparsity });
      let model = r.model;
      if (config.method === 'hybrid') {
        const removed = countSparsity(model, weights).overall;
        const rest = prunableWeights(model, { exclude: config.exclude, keepFirstLayer: config.keepFirstLayer, keepLastLayer: config.keepLastLayer });
        const restTotal = rest.reduce((n, w) => n + w.dims.reduce((a, b) => a * b, 1), 0);
        const denseTotal = weights.reduce((n, w) => n + w.dims.reduce((a, b) => a * b, 1), 0);
        const extra = Math.max(0, config.sparsity * denseTotal - (denseTotal - restTotal));
        const frac = restTotal > 0 ? Math.min(1, extra / restTotal) : 0;
        model = magnitudePrune(model, rest, frac, config.scope).model;
        description += `; then unstructured magnitude (${config.scope}) of the remaining weights: ${(frac * 100).toFixed(1)}% of them zeroed (structured alone removed ${(removed * 100).toFixed(1)}% of prunable weights)`;
      }
      return { model, description, denseWeights: weights, notes: r.notes };
    }
    default:
      throw new UserError(`--method ${config.method}: not available in this version yet; use --method unstructured, structured or hybrid`);
  }
}
