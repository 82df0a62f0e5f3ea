import * as path from 'node:path';
import { median } from 'simple-statistics';
import { DEFAULT_CONFIG, type Config } from '../src/config/schema.js';
import { loadDataset, sliceBatch, takeSamples, type Dataset } from '../src/data/dataset.js';
import { evaluateClassifier, type Predictions } from '../src/onnx/runtime/classifier.js';
import { mannWhitneyP } from '../src/measure/funnel.js';
import { measureInterleaved } from '../src/measure/latency.js';
import { accuracy, agreement } from '../src/measure/metrics.js';
import { openSession } from '../src/onnx/runtime/ort.js';
import { modelCost } from '../src/onnx/flops.js';
import { loadModel, saveModel } from '../src/onnx/model.js';
import type { ModelProto } from '../src/onnx/proto/onnx_pb.js';
import { modelInputs } from '../src/onnx/signature.js';
import { prunableWeights, type PrunableWeight } from '../src/prune/prunable.js';
import { pruneModel, type PruneOutcome } from '../src/prune/pruneModel.js';
import { seededRandom } from '../src/util/random.js';
import { analyzeDependencies } from '../src/prune/structured/depgraph.js';
import { untieConstants } from '../src/prune/structured/untie.js';

export interface BenchModel {
  name: string;
  file: string;
  /** labelled .npz; without it the model is fed seeded random inputs and only agreement is meaningful */
  data?: string;
  /** calibration .npz for the recovery bench; models without one are not in it */
  calib?: string;
}

export interface BenchOptions {
  quick: boolean;
  /** labelled samples evaluated (the first n of the set) */
  evalSamples: number;
  /** random inputs for models without data */
  syntheticSamples: number;
  warmup: number;
  runs: number;
  /** back-to-back runs per latency sample, the best of which is the sample (allocation and INT8 rows) */
  repeat: number;
  /** batch sizes the INT8 step times its plans at when it chooses which layers stay float */
  planBatches: number[];
}

/** What the stages of one (model, method) run hand each other; every stage fills in its part. */
export interface StageContext {
  model: BenchModel;
  method: string;
  config: Config;
  options: BenchOptions;
  /** folder for the pruned file */
  workDir: string;
  dense?: ModelProto;
  data?: Dataset;
  weights?: PrunableWeight[];
  macs?: number;
  params?: number;
  pruned?: PruneOutcome;
  prunedPath?: string;
  densePreds?: Predictions;
  prunedPreds?: Predictions;
  latency?: { dense: number[]; pruned: number[] };
  /** structured: dependency groups found and how many of them can be pruned */
  groups?: { found: number; prunable: number };
}

/** One timed step of the pipeline. Stages run in list order and may read what earlier ones stored. */
export interface Stage {
  name: string;
  run(ctx: StageContext): Promise<void> | void;
}

function seededInputs(dims: number[], seed: number): Float32Array {
  const next = seededRandom(seed);
  return Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => next() * 2 - 1);
}

/**
 * Seeded random inputs for a model that ships without data (the torchvision scale models). Input k is
 * drawn from seed + k, so two sets with different seeds share no samples (a calibration set and the
 * inputs INT8 is judged on).
 */
export function syntheticDataset(model: ModelProto, file: string, count: number, seed = 1): Dataset {
  const inputs = new Map<string, { dtype: 'float32'; dims: number[]; data: Float32Array }>();
  modelInputs(model, file).forEach((sig, k) => {
    if (sig.dtype !== 'float32') throw new Error(`${file}: input ${sig.name} is ${sig.dtype}; the bench only synthesises float32 inputs`);
    const dims = sig.dims.map((d, i) => (typeof d === 'number' ? d : i === 0 ? count : 1));
    dims[0] = count;
    inputs.set(sig.name, { dtype: 'float32', dims, data: seededInputs(dims, seed + k) });
  });
  return { path: '(random inputs)', count, inputs, labels: new Int32Array(count) };
}

const evalBatch = (ctx: StageContext): number => (ctx.model.data ? ctx.config.evalBatchSize : 8);

async function predict(file: string, ctx: StageContext): Promise<Predictions> {
  const session = await openSession(file, { threads: 0 });
  try {
    return await evaluateClassifier(session, ctx.data!, { batchSize: evalBatch(ctx), modelPath: file });
  } finally {
    await session.release();
  }
}

export const LOAD: Stage = {
  name: 'load',
  run(ctx) {
    ctx.dense = loadModel(ctx.model.file).proto;
    const { data, file } = ctx.model;
    if (data) {
      const all = loadDataset(data, modelInputs(ctx.dense, file), { requireLabels: true, modelPath: file });
      const n = Math.min(all.count, ctx.options.evalSamples);
      ctx.data = n < all.count ? takeSamples(all, Array.from({ length: n }, (_, i) => i)) : all;
    } else {
      ctx.data = syntheticDataset(ctx.dense, file, ctx.options.syntheticSamples);
    }
  },
};

export const ANALYSIS: Stage = {
  name: 'analysis',
  run(ctx) {
    const { config } = ctx;
    ctx.weights = prunableWeights(ctx.dense!, { exclude: config.exclude, keepFirstLayer: config.keepFirstLayer, keepLastLayer: config.keepLastLayer });
    const cost = modelCost(ctx.dense!);
    ctx.macs = cost.macs;
    ctx.params = cost.params;
  },
};

export const PRUNE: Stage = {
  name: 'prune',
  async run(ctx) {
    ctx.pruned = await pruneModel(ctx.dense!, ctx.config, { modelPath: ctx.model.file });
  },
};

export const SAVE: Stage = {
  name: 'save',
  run(ctx) {
    ctx.prunedPath = path.join(ctx.workDir, `${ctx.model.name}.${ctx.method.replace(':', 'of')}.onnx`);
    saveModel(ctx.pruned!.model, ctx.prunedPath);
    // the pipeline checks the method's promise on the file read back; so does the bench, inside this stage
    const broken = ctx.pruned!.verifySaved?.(loadModel(ctx.prunedPath).proto) ?? [];
    if (broken.length > 0) throw new Error(`${ctx.prunedPath}: ${broken[0]}`);
  },
};

export const EVALUATE: Stage = {
  name: 'evaluate',
  async run(ctx) {
    ctx.densePreds = await predict(ctx.model.file, ctx);
    ctx.prunedPreds = await predict(ctx.prunedPath!, ctx);
  },
};

export const LATENCY: Stage = {
  name: 'latency',
  async run(ctx) {
    const source = sliceBatch(ctx.data!, 0, 1);
    const { warmup, runs } = ctx.options;
    const samples = await measureInterleaved([ctx.model.file, ctx.prunedPath!], source, { batchSizes: [1], warmup, runs, threads: 0 });
    ctx.latency = { dense: samples[0][0], pruned: samples[1][0] };
  },
};

/**
 * Structured pruning's own analysis, timed alone: untie shared constants, then find every dependency
 * group (the prune stage repeats it inside structuredPrune; this column is what the analysis costs).
 */
export const DEPENDENCY_GROUPS: Stage = {
  name: 'groups',
  run(ctx) {
    const analysis = analyzeDependencies(untieConstants(ctx.dense!));
    ctx.groups = { found: analysis.groups.length, prunable: analysis.groups.filter((g) => !g.skip).length };
  },
};

/** The stages every method runs, in order. */
export const DEFAULT_STAGES: readonly Stage[] = [LOAD, ANALYSIS, PRUNE, SAVE, EVALUATE, LATENCY];

/**
 * Extension point: methods that need more (structured analysis, recovery) get their own list here, e.g.
 * `structured: [LOAD, ANALYSIS, GROUPS, PRUNE, RECOVER, SAVE, EVALUATE, LATENCY]`. The report's columns are
 * the union of stage names in first-seen order.
 */
export const STAGES_BY_METHOD: Record<string, readonly Stage[]> = {
  structured: [LOAD, ANALYSIS, DEPENDENCY_GROUPS, PRUNE, SAVE, EVALUATE, LATENCY],
};

export function stagesFor(method: string): readonly Stage[] {
  return STAGES_BY_METHOD[method] ?? DEFAULT_STAGES;
}

export function benchConfig(method: string): Config {
  // global: the bench's tables compare methods at one allocation (scope auto would measure sensitivity curves)
  return { ...DEFAULT_CONFIG, method: method as Config['method'], sparsity: 0.5, scope: 'global' };
}

export interface Outcome {
  speedup: number | null;
  p_value: number | null;
  accuracy_dense: number | null;
  accuracy_pruned: number | null;
  agreement: number | null;
  sparsity_note: string;
}

/** The results the report shows beside the stage timings. */
export function outcome(ctx: StageContext): Outcome {
  const lat = ctx.latency;
  const labelled = Boolean(ctx.model.data);
  const d = ctx.densePreds;
  const p = ctx.prunedPreds;
  return {
    speedup: lat ? median(lat.dense) / median(lat.pruned) : null,
    p_value: lat ? mannWhitneyP(lat.dense, lat.pruned) : null,
    accuracy_dense: labelled && d ? accuracy(d.pred, ctx.data!.labels!) : null,
    accuracy_pruned: labelled && p ? accuracy(p.pred, ctx.data!.labels!) : null,
    agreement: d && p ? agreement(d.pred, p.pred) : null,
    sparsity_note: ctx.pruned?.description ?? '',
  };
}
