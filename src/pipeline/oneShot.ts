import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomicWrite.js';
import type { Progress } from '../io/progress.js';
import type { ModelLedger } from '../ledger/types.js';
import { liftWeights } from '../onnx/liftedWeights.js';
import { loadModel } from '../onnx/model.js';
import { pruneModel, targetSparsity } from '../prune/pruneModel.js';
import { resolveCompare } from '../recover/rounds.js';
import { hasRecoverySteps, stepFile } from '../recover/runRecovery.js';
import { VERSION } from '../version.js';
import { buildModelLedger } from './ledger.js';
import { measureRecord, measureStep, type MeasuredStep } from './measureStep.js';
import { collectGarbage, releaseField } from './release.js';
import type { StrategyInput } from './request.js';
import { pruneWithRounds } from './rounds.js';
import type { StepRecord } from './steps.js';
import { timeSteps } from './timeSteps.js';
import { pruneAndRecover, type UnitOutcome } from './unit.js';
import { measureQuantized, quantizeLast } from './quantizeStep.js';
import { judgeWithIntervals } from './verdicts.js';

/**
 * `--schedule oneshot`: one prune-and-recover unit at the target, or with recovery rounds the rounds'
 * units and then the final one. Everything is pruned and saved first; then the dense input and every
 * saved step are measured the same way, timed interleaved in one pass, and the shipped (last) step is
 * judged against dense.
 */
export async function runOneShot(input: StrategyInput, progress: Progress): Promise<ModelLedger> {
  const { req, data, shifts, calib, outPath, scope, rounds, head } = input;
  const { config } = req;
  const target = targetSparsity(config);
  // after every check, so a refused run still prints one line; falling back to global is the default, not news
  if (scope.scope !== 'global' && scope.reason) progress.note(scope.reason);
  progress.stage({ kind: 'prune', model: path.basename(req.model), detail: `${config.method} to ${(target * 100).toFixed(1)}%` });
  const metadata = (scopeUsed: string): Record<string, string> => ({
    'prune-guard.version': VERSION,
    'prune-guard.method': config.method,
    'prune-guard.scope': scopeUsed,
    'prune-guard.target_sparsity': String(target),
    'prune-guard.source': path.basename(req.model),
    'prune-guard.recovery': config.recovery,
  });
  // with recovery, every stage is kept under OUT/steps and the last one is copied to outPath
  const stepsDir = path.join(req.out, 'steps');
  const files = { data: req.data, calib: req.calib };
  // quantization adds a step after the float ones, so every float stage is kept under OUT/steps too
  const staged = hasRecoverySteps(config, calib) || config.quantize !== 'none';
  let roundSteps: StepRecord[] = [];
  let unit: UnitOutcome;
  if (rounds > 1) {
    // recovery rounds prune and recover round by round, the last round's steps as in one shot
    const r = await pruneWithRounds(input.dense.proto, config, rounds, { modelPath: req.model, calib: calib!, stepsDir, progress, files, metadata, head }, resolveCompare(config, rounds));
    for (const n of r.final.pruned.notes) progress.note(n);
    roundSteps = r.rounds;
    unit = r.final;
  } else {
    // scope auto may not spend longer measuring curves than recovery may spend refitting
    const autoAnalysisSeconds = scope.reason && config.recoveryTimeBudget > 0 ? config.recoveryTimeBudget : undefined;
    unit = await pruneAndRecover({
      prune: async () => {
        const pruned = await pruneModel(input.dense.proto, config, { modelPath: req.model, calib, progress, head, ...(autoAnalysisSeconds !== undefined ? { autoAnalysisSeconds } : {}) });
        for (const n of pruned.notes) progress.note(n);
        return pruned;
      },
      metadata: (pruned) => metadata(pruned.scope ?? config.scope),
      pruneArtifact: staged ? stepFile(stepsDir, 1, 'prune') : outPath,
      recovery: { dense: input.dense.proto, calib, config, stepsDir, progress, files, head },
    });
  }
  const { pruned } = unit;
  const lastFloat = unit.steps[unit.steps.length - 1].artifact;
  // the last float file must still hold the method's pattern after every recovery stage, read as
  // pruning saw it: weights behind a Cast or a constant Reshape lifted again
  const saved = loadModel(lastFloat).proto;
  liftWeights(saved);
  const broken = pruned.verifySaved?.(saved) ?? [];
  if (broken.length > 0) throw new Error(`internal error: ${lastFloat} breaks the ${config.method} pattern: ${broken.slice(0, 3).join('; ')}`);
  // quantization compresses what recovery shipped; the float file stays among the steps
  const quantized = await quantizeLast(lastFloat, calib, config, stepFile(stepsDir, unit.steps.length + 1, `quantize-${config.quantize}`), progress, input.provider);
  if (staged) writeFileAtomic(outPath, fs.readFileSync(quantized?.artifact ?? lastFloat));
  // from here on every number is read from the saved files: the parsed models (each about the file's
  // size) would otherwise stay alive beside onnxruntime's own copies until the run ends
  releaseField(input.dense, 'proto', 'the dense model');
  releaseField(pruned, 'model', 'the pruned model');
  // structured: the untied dense reference recovery refit toward is a third full copy
  delete pruned.structured;
  collectGarbage();

  const ctx = { data, shifts, denseWeights: pruned.denseWeights, config, progress, provider: input.provider, head };
  const dense = await measureStep({ kind: 'dense' }, 'input model, unchanged', req.model, ctx);
  const measured: MeasuredStep[] = [dense];
  // intermediate recovery rounds first, then the final unit's prune and recovery
  for (const r of [...roundSteps, ...unit.steps]) measured.push(await measureRecord(r, { ...ctx, dense: dense.preds }));
  if (unit.temperature) measured[measured.length - 1].step.temperature = unit.temperature;
  if (quantized) measured.push(await measureQuantized(quantized, { ...ctx, dense: dense.preds }));
  const shipped = measured[measured.length - 1];

  const samples = await timeSteps(measured, data, config, input.provider, progress);
  const judged = judgeWithIntervals(req.budgets, dense, shipped, data, shifts, { reference: samples[0][0], candidate: samples[samples.length - 1][0] }, config);
  return buildModelLedger({
    model: req.model,
    pruned: outPath,
    method: config.method,
    targetSparsity: target,
    steps: measured,
    reference: dense,
    shipped,
    judged,
    data: { path: req.data, set: data },
    head,
    plan: input.plan,
    shifts,
    config,
    notes: [...input.exportNotes, ...pruned.notes, ...unit.notes, ...(quantized?.notes ?? [])],
    scope: pruned.scope ?? scope.scope,
    ...(pruned.sensitivity ? { sensitivity: pruned.sensitivity } : {}),
  });
}
