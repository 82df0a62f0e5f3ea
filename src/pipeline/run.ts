import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkConfig } from '../config/rules.js';
import type { Config } from '../config/schema.js';
import { loadDataset, type Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import type { ModelLedger } from '../ledger/types.js';
import { resolveProvider } from '../measure/provider.js';
import { corruptionSets } from '../measure/corruptions.js';
import { judgeWithIntervals, predictionShifts, shiftResults } from './verdicts.js';
import { loadModel, saveModel, setMetadata, type LoadedModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { preflightModel } from '../onnx/preflight.js';
import { modelInputs } from '../onnx/signature.js';
import { pruneModel, targetSparsity } from '../prune/pruneModel.js';
import { resolveScope } from '../prune/resolveScope.js';
import { hasRecoverySteps, runRecovery, stepFile } from '../recover/runRecovery.js';
import { pruneWithRounds, resolveCompare, resolveRounds } from '../recover/rounds.js';
import { VERSION } from '../version.js';
import { runGradual } from './gradual.js';
import { classChanges, writeLedger } from './ledgerFile.js';
import { timeSteps } from './timeSteps.js';
import { measureStep, type MeasuredStep } from './measureStep.js';
import type { RunRequest, RunResult } from './request.js';
import type { Progress } from '../io/progress.js';
import { collectGarbage, releaseField } from './release.js';
import { checkQuantizeInputs, measureQuantized, quantizeDynamicStep, quantizeStep, type QuantizeStepResult } from './quantizeStep.js';
import { prunableWeights } from '../prune/prunable.js';

export function prunedPath(out: string, model: string): string {
  return path.join(out, `${path.basename(model).replace(/\.onnx$/i, '')}.pruned.onnx`);
}

/**
 * The whole `run` pipeline for one model: load, validate data, prune, save, then measure the dense
 * input and every saved artifact the same way, check budgets and write the ledger. Inputs are all
 * validated before anything is written, and every file is written atomically.
 */
export async function runPipeline(req: RunRequest, progress: Progress): Promise<RunResult> {
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
  const scope = resolveScope(config, calib ? { labelled: calib.labels !== null } : undefined, rounds);
  config = { ...config, scope: scope.scope };
  req = { ...req, config };
  const outPath = prunedPath(req.out, req.model);
  if (path.resolve(outPath) === path.resolve(req.model)) {
    throw new UserError(`--out ${req.out}: would overwrite the input model ${req.model}; choose another output folder`);
  }
  checkConfig({ ...config, scope: scope.scope }, { calib: !calib ? 'none' : calib.labels ? 'labelled' : 'unlabelled' });
  checkQuantizeInputs(config, dense.proto, req);
  const quantizeOnly = config.quantize !== 'none' && config.sparsity === 0;

  // before anything is written: a run that cannot measure where it was asked to must not leave files
  const provider = await resolveProvider(config.executionProvider, req.model);
  if (provider.note) progress.note(provider.note);
  if (config.schedule === 'gradual') return runGradual({ req, dense: dense.proto, data, shifts, calib, outPath, provider }, progress);
  if (quantizeOnly) return quantizeOnlyRun({ req, dense, data, shifts, calib, outPath, provider }, progress);
  const target = targetSparsity(config);
  // after every check, so a refused run still prints one line; falling back to global is today's behaviour, not news
  if (scope.scope !== 'global' && scope.reason) progress.note(scope.reason);
  progress.note(`pruning ${path.basename(req.model)}: ${config.method} to ${(target * 100).toFixed(1)}%`);
  const stamp = (model: ModelProto, scope: string = config.scope): void => {
    setMetadata(model, {
      'prune-guard.version': VERSION,
      'prune-guard.method': config.method,
      'prune-guard.scope': scope,
      'prune-guard.target_sparsity': String(target),
      'prune-guard.source': path.basename(req.model),
    });
    setMetadata(model, { 'prune-guard.recovery': config.recovery });
  };
  // recovery rounds prune and recover round by round, the last round included (its steps as in one shot)
  const withRounds = rounds > 1 ? await pruneWithRounds(dense.proto, config, rounds, { modelPath: req.model, calib: calib!, stepsDir: path.join(req.out, 'steps'), progress, files: { data: req.data, calib: req.calib }, stamp }, resolveCompare(config, rounds)) : undefined;
  // scope auto may not spend longer measuring curves than recovery may spend refitting
  const autoAnalysisSeconds = scope.reason && config.recoveryTimeBudget > 0 ? config.recoveryTimeBudget : undefined;
  const pruned = withRounds?.pruned ?? (await pruneModel(dense.proto, config, { modelPath: req.model, calib, progress, ...(autoAnalysisSeconds !== undefined ? { autoAnalysisSeconds } : {}) }));
  for (const n of pruned.notes) progress.note(n);
  if (!withRounds) stamp(pruned.model, pruned.scope ?? config.scope);
  fs.mkdirSync(req.out, { recursive: true });
  // with recovery, every stage is kept under OUT/steps and the last one is copied to outPath
  const stepsDir = path.join(req.out, 'steps');
  const staged = hasRecoverySteps(config, calib);
  // quantization adds a step after the float ones, so every float stage is kept under OUT/steps too
  const keepStages = staged || config.quantize !== 'none';
  const pruneArtifact = withRounds?.pruneArtifact ?? (keepStages ? stepFile(stepsDir, 1, 'prune') : outPath);
  if (keepStages) fs.mkdirSync(stepsDir, { recursive: true });
  if (!withRounds) saveModel(pruned.model, pruneArtifact);
  const recovery = withRounds?.recovery ?? (await runRecovery({ dense: dense.proto, pruned: pruned.model, prunedArtifact: pruneArtifact, denseWeights: pruned.denseWeights, calib, config, stepsDir, progress, files: { data: req.data, calib: req.calib }, structured: pruned.structured }));
  const recovered = recovery.steps;
  const lastFloat = recovered.at(-1)?.artifact ?? pruneArtifact;
  // the last float file must still hold the method's pattern after every recovery stage
  const broken = pruned.verifySaved?.(loadModel(lastFloat).proto) ?? [];
  if (broken.length > 0) throw new Error(`internal error: ${lastFloat} breaks the ${config.method} pattern: ${broken.slice(0, 3).join('; ')}`);
  // from here on every number is read from the saved files: the parsed models (each about the file's
  // size) would otherwise stay alive beside onnxruntime's own copies until the run ends
  releaseField(dense, 'proto', 'the dense model');
  releaseField(pruned, 'model', 'the pruned model');
  // structured: the untied dense reference recovery refit toward is a third full copy
  delete pruned.structured;
  collectGarbage();

  // quantization compresses what recovery shipped; the float file stays among the steps
  const quantized = await quantizeLast(lastFloat, calib, config, stepFile(stepsDir, recovered.length + 2, `quantize-${config.quantize}`), progress, provider.provider);
  if (keepStages) writeFileAtomic(outPath, fs.readFileSync(quantized?.artifact ?? lastFloat));

  const ctx = { data, shifts, denseWeights: pruned.denseWeights, config, progress, provider: provider.provider };
  const denseStep = await measureStep('dense', 'input model, unchanged', req.model, ctx);
  const measured: MeasuredStep[] = [denseStep];
  // intermediate recovery rounds first, then the final round's prune and recovery as in one shot
  for (const r of withRounds?.steps ?? []) {
    const m = await measureStep(r.name, r.description, r.artifact, { ...ctx, dense: denseStep.preds });
    m.step.recovery = r.info;
    measured.push(m);
  }
  measured.push(await measureStep('prune', pruned.description, pruneArtifact, { ...ctx, dense: denseStep.preds }));
  for (const r of recovered) {
    const m = await measureStep(r.name, r.description, r.artifact, { ...ctx, dense: denseStep.preds });
    m.step.recovery = r.info;
    if (r.temperature) m.step.temperature = r.temperature;
    measured.push(m);
  }
  if (recovery.temperature) measured[measured.length - 1].step.temperature = recovery.temperature;
  if (quantized) measured.push(await measureQuantized(quantized, { ...ctx, dense: denseStep.preds }));

  const notes = [...pruned.notes, ...recovery.notes, ...(quantized?.notes ?? [])];
  return finishRun({ req, provider, data, shifts, measured, outPath, target, notes, scope: pruned.scope ?? scope.scope, sensitivity: pruned.sensitivity }, progress);
}

/** The configured quantization of a float file, saved at `artifact`; undefined without `--quantize`. */
async function quantizeLast(source: string, calib: Dataset | undefined, config: Config, artifact: string, progress: Progress, provider: 'cpu' | 'cuda'): Promise<QuantizeStepResult | undefined> {
  if (config.quantize === 'int8') return quantizeStep({ source, calib: calib!, config, artifact, progress, provider });
  if (config.quantize === 'dynamic') return quantizeDynamicStep({ source, calib, config, artifact, progress, provider });
  return undefined;
}

interface FinishInput {
  req: RunRequest;
  provider: Awaited<ReturnType<typeof resolveProvider>>;
  data: Dataset;
  shifts: { name: string; data: Dataset }[];
  /** every measured step, dense first and the shipped model last */
  measured: MeasuredStep[];
  outPath: string;
  target: number;
  notes: string[];
  scope: ModelLedger['scope'];
  sensitivity?: ModelLedger['sensitivity'];
}

/** Time every step interleaved, judge the budgets on the shipped model against dense, and write the ledger. */
async function finishRun(input: FinishInput, progress: Progress): Promise<RunResult> {
  const { req, provider, data, shifts, measured } = input;
  const { config } = req;
  const samples = await timeSteps(measured, data, config, provider.provider, progress);
  const steps = measured.map((m) => m.step);
  const final = steps[steps.length - 1];
  const denseStep = measured[0];
  const judged = judgeWithIntervals(req.budgets, measured[0], measured[measured.length - 1], data, shifts, { reference: samples[0][0], candidate: samples[samples.length - 1][0] }, config, classChanges(steps[0], final, data.labels!, denseStep.preds.classes));
  const { budgets, verdict } = judged;
  const modelLedger: ModelLedger = {
    model: req.model,
    pruned: input.outPath,
    method: config.method,
    target_sparsity: input.target,
    steps,
    budgets,
    verdict,
    class_changes: judged.classChanges,
    eval: { data: req.data, samples: data.count, classes: denseStep.preds.classes },
    ...(input.notes.length > 0 ? { notes: input.notes } : {}),
    shifts: shiftResults(measured[0], measured[measured.length - 1], shifts, new Set(config.corruptions), config.confidence),
    prediction_shift: predictionShifts(measured[0], measured[measured.length - 1], shifts),
    scope: input.scope,
    ...(input.sensitivity ? { sensitivity: input.sensitivity } : {}),
  };
  return writeLedger(req, provider, modelLedger);
}

/**
 * `--quantize int8 --sparsity 0`: no pruning and no recovery, only the float input and its INT8 version,
 * measured and judged like any run.
 */
async function quantizeOnlyRun(input: { req: RunRequest; dense: LoadedModel; data: Dataset; shifts: { name: string; data: Dataset }[]; calib: Dataset | undefined; outPath: string; provider: FinishInput['provider'] }, progress: Progress): Promise<RunResult> {
  const { req, data, shifts, calib, outPath, provider } = input;
  const { config } = req;
  const denseWeights = prunableWeights(input.dense.proto, { exclude: config.exclude, keepFirstLayer: false, keepLastLayer: false });
  releaseField(input.dense, 'proto', 'the dense model');
  const stepsDir = path.join(req.out, 'steps');
  fs.mkdirSync(stepsDir, { recursive: true });
  const quantized = (await quantizeLast(req.model, calib, config, stepFile(stepsDir, 1, `quantize-${config.quantize}`), progress, provider.provider))!;
  writeFileAtomic(outPath, fs.readFileSync(quantized.artifact));
  collectGarbage();
  const ctx = { data, shifts, denseWeights, config, progress, provider: provider.provider };
  const denseStep = await measureStep('dense', 'input model, unchanged', req.model, ctx);
  const measured = [denseStep, await measureQuantized(quantized, { ...ctx, dense: denseStep.preds })];
  return finishRun({ req, provider, data, shifts, measured, outPath, target: 0, notes: quantized.notes, scope: config.scope === 'auto' ? 'global' : config.scope }, progress);
}
