import type { Config } from '../config/schema.js';
import { sliceBatch, type Dataset } from '../data/dataset.js';
import { speedFunnel, weightFacts } from '../measure/funnel.js';
import { latencyStat, measureInterleaved } from '../measure/latency.js';
import { measureRuntimeCost } from '../measure/runtimeCost.js';
import { loadModel } from '../onnx/model.js';
import type { MeasuredStep } from './measureStep.js';
import type { PairedLatency } from './verdicts.js';
import type { Progress } from '../io/progress.js';
import type { SpeedTests } from './speedDecisions.js';

/**
 * Latency of every measured step, interleaved in one pass (the first step is dense), then each step's
 * speed funnel, sparse encoding size and runtime cost, exactly as `runPipeline` measures them.
 * Returns the raw samples per step per batch size, for the budgets' paired intervals. With `speed`, the
 * first and last steps are sampled at the first batch size until every speed budget's test decided.
 */
export async function timeSteps(measured: readonly Pick<MeasuredStep, 'step'>[], data: Dataset, config: Config, provider: 'cpu' | 'cuda', progress: Progress, speed?: SpeedTests): Promise<number[][][]> {
  const artifacts = measured.map((m) => m.step.artifact);
  progress.stage({ kind: 'latency', detail: `${artifacts.length} models interleaved`, total: config.batchSizes.length * (config.latency.warmup + config.latency.runs) });
  const source = sliceBatch(data, 0, Math.min(data.count, Math.max(...config.batchSizes)));
  const samples = await measureInterleaved(artifacts, source, { ...config.latency, batchSizes: config.batchSizes, confidence: config.confidence, provider, sequential: speed?.tests }, (done) => progress.update(done));
  progress.stop();
  measured.forEach((m, i) => {
    m.step.latency_by_batch = config.batchSizes.map((b, j) => latencyStat(b, samples[i][j], config.confidence));
    m.step.latency = m.step.latency_by_batch[0];
  });
  const facts = measured.map((m) => weightFacts(loadModel(m.step.artifact).proto));
  measured.forEach((m, i) => {
    m.step.sparse_bytes = facts[i].sparseBytes;
    m.step.funnel = speedFunnel({ dense: measured[0].step, denseFacts: facts[0], step: m.step, stepFacts: facts[i], denseSamples: samples[0][0], stepSamples: samples[i][0] });
  });
  for (const m of measured) m.step.runtime_cost = await measureRuntimeCost(m.step.artifact, m.step.latency_by_batch, source, { threads: config.latency.threads, provider });
  return samples;
}

/** Primary-batch latency of dense and one candidate, interleaved: enough to judge a latency budget mid-schedule. */
export async function timePair(dense: string, candidate: string, data: Dataset, config: Config, provider: 'cpu' | 'cuda', progress: Progress, speed?: SpeedTests): Promise<PairedLatency> {
  const batch = config.batchSizes[0];
  progress.stage({ kind: 'latency', detail: 'dense and schedule step', total: config.latency.warmup + config.latency.runs });
  const source = sliceBatch(data, 0, Math.min(data.count, batch));
  const samples = await measureInterleaved([dense, candidate], source, { ...config.latency, batchSizes: [batch], confidence: config.confidence, provider, sequential: speed?.tests }, (done) => progress.update(done));
  progress.stop();
  return { reference: samples[0][0], candidate: samples[1][0], ...(speed ? { decisions: speed.decisions() } : {}) };
}
