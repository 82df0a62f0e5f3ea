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
import { batchPlan } from './exported.js';
import { chooseTask, taskLine } from './task.js';
import { runFidelityOneShot } from './fidelityRun.js';
import type { Dataset } from '../data/dataset.js';
import { liftWeights, type LiftedBy } from '../onnx/liftedWeights.js';
import { dataTypeName } from '../onnx/tensor.js';

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
  const loaded = loadDataset(req.data, inputs, { requireLabels: false, modelPath: req.model });
  const task = chooseTask(dense.proto, req.model, config, loaded);
  // the fidelity task compares outputs with the dense model's: labels in the data are not used
  const data = task.task === 'fidelity' ? unlabelled(loaded) : loaded;
  const plan = batchPlan(dense.proto, req.model, config);
  config = { ...config, batchSizes: plan.batchSizes, evalBatchSize: plan.evalBatch };
  req = { ...req, config };
  // shift sets without labels are allowed: they get prediction-distribution tests instead of accuracy
  const userShifts = req.shifts.map((s) => ({ name: s.name, data: loadDataset(s.path, inputs, { requireLabels: false, modelPath: req.model }) }));
  const shifts = [...userShifts, ...corruptionSets(data, config.corruptions)];
  if (task.task === 'fidelity' && req.shifts.length > 0) {
    throw new UserError(`--shift ${req.shifts[0].path}: shift sets are judged by label accuracy and prediction distributions, which task fidelity (every output judged against the dense model) does not use; drop --shift`);
  }
  const calibLoaded = req.calib ? loadDataset(req.calib, inputs, { requireLabels: false, modelPath: req.model }) : undefined;
  const calib = calibLoaded && task.task === 'fidelity' ? unlabelled(calibLoaded) : calibLoaded;
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
  checkConfig({ ...config, scope: scope.scope }, { calib: !calib ? 'none' : calib.labels ? 'labelled' : 'unlabelled', task: task.task });
  // on the model as exported: weights stored in another type are what quantization refuses
  checkQuantizeInputs(config, dense.proto, req);
  // weights behind a Cast or a constant Reshape are pruned and refit as the float32 tensors the layers
  // read, and saved back in their own type and shape
  const lifted = liftWeights(dense.proto);

  // before anything is written: a run that cannot measure where it was asked to must not leave files
  const provider = await resolveProvider(config.executionProvider, req.model);
  if (provider.note) progress.note(provider.note);
  const exportNotes = [...(plan.note ? [plan.note] : []), ...liftedNotes(lifted)];
  for (const n of exportNotes) progress.note(n);
  const common = { req, dense, data, shifts, calib, outPath, provider: provider.provider, scope, rounds, plan, exportNotes };
  if (task.task === 'fidelity') {
    progress.note(taskLine(task));
    return { model: await runFidelityOneShot({ ...common, task }, progress), runtime: measuredRuntime(provider, config) };
  }
  const input = { ...common, head: task.head };
  const quantizeOnly = config.quantize !== 'none' && config.sparsity === 0;
  const model = quantizeOnly ? await runQuantizeOnly(input, progress) : config.schedule === 'gradual' ? await runGradual(input, progress) : await runOneShot(input, progress);
  return { model, runtime: measuredRuntime(provider, config) };
}

/** One line per kind of op the lifted weights were behind, for the progress log and the ledger's notes. */
function liftedNotes(lifted: readonly { by: LiftedBy; type: number }[]): string[] {
  const notes: string[] = [];
  const count = (n: number) => `${n} weight${n > 1 ? 's' : ''}`;
  const cast = lifted.filter((l) => l.by === 'Cast');
  if (cast.length > 0) notes.push(`${count(cast.length)} stored as ${[...new Set(cast.map((l) => dataTypeName(l.type).toLowerCase()))].join(' and ')} behind a Cast: pruned and refit as float32, saved back in their own type`);
  const reshape = lifted.filter((l) => l.by === 'Reshape');
  if (reshape.length > 0) notes.push(`${count(reshape.length)} stored in another shape behind a constant Reshape: pruned and refit in the shape the layer reads, saved back in their own shape (unless structured pruning resized them)`);
  return notes;
}

/** The same set without its labels: the fidelity task judges outputs against the dense model, not `y`. */
function unlabelled(data: Dataset): Dataset {
  return { ...data, labels: null, labelWidth: 1 };
}
