import * as path from 'node:path';
import { checkConfig } from '../config/rules.js';
import { loadDataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import type { Progress } from '../io/progress.js';
import { corruptionSets } from '../measure/corruptions.js';
import { resolveProvider } from '../measure/provider.js';
import { loadModel } from '../onnx/model.js';
import { preflightModel } from '../onnx/preflight.js';
import { modelInputs } from '../onnx/signature.js';
import { resolveScope } from '../prune/resolveScope.js';
import { resolveRounds } from '../recover/rounds.js';
import { VERSION } from '../version.js';
import { runGradual } from './gradual.js';
import { measuredRuntime } from './ledger.js';
import { runOneShot } from './oneShot.js';
import { checkQuantizeInputs } from './quantizeStep.js';
import { runQuantizeOnly } from './quantizeOnly.js';
import type { PipelineResult, RunRequest } from './request.js';

export function prunedPath(out: string, model: string): string {
  return path.join(out, `${path.basename(model).replace(/\.onnx$/i, '')}.pruned.onnx`);
}

/**
 * The whole `run` pipeline for one model: load, validate data and every setting against each other,
 * then the configured strategy (one shot, recovery rounds or a gradual schedule) prunes, recovers and
 * saves into `req.out`, measures the dense input and every saved step the same way and judges the
 * budgets. Returns the model's ledger record; the only files written are artifacts (the caller writes
 * the ledger, see runGuarded). Inputs are all validated before anything is written.
 */
export async function runPipeline(req: RunRequest, progress: Progress): Promise<PipelineResult> {
  let { config } = req;
  const dense = loadModel(req.model);
  preflightModel(dense.proto, req.model);
  const inputs = modelInputs(dense.proto, req.model);
  const data = loadDataset(req.data, inputs, { requireLabels: true, modelPath: req.model });
  // shift sets without labels are allowed: they get prediction-distribution tests instead of accuracy
  const userShifts = req.shifts.map((s) => ({ name: s.name, data: loadDataset(s.path, inputs, { requireLabels: false, modelPath: req.model }) }));
  const shifts = [...userShifts, ...corruptionSets(data, config.corruptions)];
  const calib = req.calib ? loadDataset(req.calib, inputs, { requireLabels: false, modelPath: req.model }) : undefined;
  // `scope: auto` becomes the scope actually used before any check, step or ledger reads it
  // rounds do not depend on the scope, the scope does on rounds (rounds keep the global threshold)
  const rounds = resolveRounds(config, calib);
  // a latency target allocates by loss (or importance) per millisecond itself: scope auto means global there
  const targeted = config.targetSpeedup !== undefined || config.targetLatencyMs !== undefined;
  const scope = targeted && config.scope === 'auto' ? { scope: 'global' as const, reason: '' } : resolveScope(config, calib ? { labelled: calib.labels !== null } : undefined, rounds);
  config = { ...config, scope: scope.scope };
  req = { ...req, config };
  const outPath = prunedPath(req.out, req.model);
  if (path.resolve(outPath) === path.resolve(req.model)) {
    throw new UserError(`--out ${req.out}: would overwrite the input model ${req.model}; choose another output folder`);
  }
  // every setting checked against the others and the data, here and nowhere later
  checkConfig({ ...config, scope: scope.scope }, { calib: !calib ? 'none' : calib.labels ? 'labelled' : 'unlabelled' });
  checkQuantizeInputs(config, dense.proto, req);

  // before anything is written: a run that cannot measure where it was asked to must not leave files
  const provider = await resolveProvider(config.executionProvider, req.model);
  if (provider.note) progress.note(provider.note);
  const input = { req, dense, data, shifts, calib, outPath, provider: provider.provider, scope, rounds };
  const quantizeOnly = config.quantize !== 'none' && config.sparsity === 0;
  const model = quantizeOnly ? await runQuantizeOnly(input, progress) : config.schedule === 'gradual' ? await runGradual(input, progress) : await runOneShot(input, progress);
  return { model, runtime: measuredRuntime(provider, config) };
}
