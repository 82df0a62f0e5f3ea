import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { magnitudePrune } from './magnitude.js';
import { prunableWeights, type PrunableWeight } from './prunable.js';

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
    default:
      throw new UserError(`--method ${config.method}: not available in this version yet; use --method unstructured`);
  }
}
