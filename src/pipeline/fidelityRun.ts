import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomicWrite.js';
import type { Progress } from '../io/progress.js';
import { evaluateBudgets, overallVerdict } from '../ledger/budgets.js';
import { buildReduction, fromTally } from '../ledger/reduction.js';
import type { ModelLedger } from '../ledger/types.js';
import { pruneModel, requestedReduction, targetSparsity } from '../prune/pruneModel.js';
import { hasRecoverySteps, stepFile } from '../recover/runRecovery.js';
import { measureFidelityRecord, measureFidelityStep, type FidelityContext, type FidelityStep } from './measureStep.js';
import { shipMetadata, structuredSpeedNotes, verifiedLast } from './oneShot.js';
import { collectGarbage, releaseField } from './release.js';
import type { StrategyInput } from './request.js';
import { stepName } from './steps.js';
import { taskLine, type JudgedTask } from './task.js';
import { timeSteps } from './timeSteps.js';
import { speedTests } from './speedDecisions.js';
import { decidedUncertainty } from '../measure/stats/uncertainty.js';
import { pruneAndRecover } from './unit.js';

/** A run judged by fidelity: everything a strategy starts from, with the outputs compared instead of a classifier head. */
export interface FidelityInput extends Omit<StrategyInput, 'head'> {
  task: Extract<JudgedTask, { task: 'fidelity' }>;
}

/**
 * The fidelity task, one shot: prune, recover toward the dense outputs, save; then the dense input and
 * every saved step are measured the same way (each output against the dense model's on the evaluation
 * set), timed interleaved, and the shipped step judged against dense.
 */
export async function runFidelityOneShot(input: FidelityInput, progress: Progress): Promise<ModelLedger> {
  const { req, data, calib, outPath, scope, task } = input;
  const { config } = req;
  const target = targetSparsity(config);
  if (scope.scope !== 'global' && scope.reason) progress.note(scope.reason);
  progress.stage({ kind: 'prune', model: path.basename(req.model), detail: `${config.method} to ${(target * 100).toFixed(1)}%` });
  const stepsDir = path.join(req.out, 'steps');
  const staged = hasRecoverySteps(config, calib);
  const outputs = task.outputs.map((o) => o.name);
  const unit = await pruneAndRecover({
    prune: async () => {
      const pruned = await pruneModel(input.dense.proto, config, { modelPath: req.model, calib, progress });
      for (const n of pruned.notes) progress.note(n);
      return pruned;
    },
    metadata: (pruned) => shipMetadata(req.model, config, pruned.scope ?? config.scope),
    pruneArtifact: staged ? stepFile(stepsDir, 1, 'prune') : outPath,
    recovery: { dense: input.dense.proto, calib, config, stepsDir, progress, files: { data: req.data, calib: req.calib }, fidelity: { outputs } },
  });
  const { pruned } = unit;
  const lastFloat = verifiedLast(unit, config);
  if (staged) writeFileAtomic(outPath, fs.readFileSync(lastFloat));
  releaseField(input.dense, 'proto', 'the dense model');
  releaseField(pruned, 'model', 'the pruned model');
  delete pruned.structured;
  collectGarbage();

  const ctx: FidelityContext = { data, denseWeights: pruned.denseWeights, config, progress, provider: input.provider, outputs: task.outputs };
  const measured: FidelityStep[] = [await measureFidelityStep({ kind: 'dense' }, 'input model, unchanged', req.model, ctx)];
  for (const r of unit.steps) measured.push(await measureFidelityRecord(r, ctx));
  const dense = measured[0].step;
  const shipped = measured[measured.length - 1].step;
  const pruneStep = measured.find((m) => m.step.name === stepName({ kind: 'prune' }))!.step;
  pruneStep.reduction = buildReduction(dense, pruneStep, requestedReduction(config), pruned.channels && fromTally(pruned.channels));

  // speed budgets sample dense (first) and the shipped step (last) until each is decided, as in a labelled run
  const speed = speedTests(req.budgets, config, 'run');
  const samples = await timeSteps(measured, data, config, input.provider, progress, speed);
  const uncertainty = decidedUncertainty(speed.decisions(), Object.fromEntries(req.budgets.map((b) => [b.name, b.limit])));
  const budgets = evaluateBudgets(req.budgets, { dense, final: shipped, reduction: pruneStep.reduction, task: 'fidelity', uncertainty }, { strict: config.strict, confidence: config.confidence });
  const speedNotes = structuredSpeedNotes(config, samples[0], samples[samples.length - 1]);
  for (const n of speedNotes) progress.note(n);
  const verdict = overallVerdict([...budgets.map((b) => b.verdict), ...(speedNotes.length > 0 ? (['warn'] as const) : [])]);
  const notes = [taskLine(task), ...input.exportNotes, ...pruned.notes, ...unit.notes, ...speedNotes];
  return {
    model: req.model,
    pruned: outPath,
    method: config.method,
    target_sparsity: target,
    task: 'fidelity',
    steps: measured.map((m) => m.step),
    budgets,
    verdict,
    class_changes: [],
    eval: { data: req.data, samples: data.count, classes: 0, outputs, batch: input.plan.evalBatch, ...(input.plan.fixed !== undefined ? { fixed_batch: input.plan.fixed } : {}) },
    notes,
    scope: pruned.scope ?? scope.scope,
  };
}
