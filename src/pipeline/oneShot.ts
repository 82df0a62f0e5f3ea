import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomicWrite.js';
import type { Progress } from '../io/progress.js';
import type { ModelLedger } from '../ledger/types.js';
import { liftWeights } from '../onnx/liftedWeights.js';
import { loadModel } from '../onnx/model.js';
import { buildReduction, fromTally } from '../ledger/reduction.js';
import type { Reduction } from '../prune/reduction.js';
import { pruneModel, requestedReduction, targetSparsity } from '../prune/pruneModel.js';
import { resolveCompare } from '../recover/rounds.js';
import { hasRecoverySteps, stepFile } from '../recover/runRecovery.js';
import { VERSION } from '../version.js';
import { buildModelLedger, type ModelLedgerInput } from './ledger.js';
import { measureRecord, measureStep, type MeasuredStep } from './measureStep.js';
import { collectGarbage, releaseField } from './release.js';
import type { StrategyInput } from './request.js';
import { pruneWithRounds } from './rounds.js';
import { stepName, type StepRecord } from './steps.js';
import { timeSteps } from './timeSteps.js';
import { speedTests } from './speedDecisions.js';
import { pruneAndRecover, type UnitOutcome } from './unit.js';
import { int8ShipForm, measureQuantized, quantizeLast } from './quantizeStep.js';
import { judgeWithIntervals } from './verdicts.js';
import type { Config } from '../config/schema.js';
import { cacheDir } from '../io/measureCache.js';
import { overallVerdict } from '../ledger/budgets.js';
import { slowerThanDense } from '../measure/funnel.js';
import { pruneForLatency } from './latencyTarget.js';
import { chooseAutoScope } from './scopeChoice.js';
import { checkWidths, widthProbes } from './widthCheck.js';
import type { TargetRecord } from '../prune/structured/record.js';
import { recoveryAllowance, type CutShort } from '../recover/work.js';
import { modelCost } from '../onnx/flops.js';

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
  const metadata = (scopeUsed: string): Record<string, string> => shipMetadata(req.model, config, scopeUsed);
  // with recovery, every stage is kept under OUT/steps and the last one is copied to outPath
  const stepsDir = path.join(req.out, 'steps');
  const files = { data: req.data, calib: req.calib };
  // quantization adds a step after the float ones, so every float stage is kept under OUT/steps too
  const staged = hasRecoverySteps(config, calib) || config.quantize !== 'none';
  let roundSteps: StepRecord[] = [];
  let unit: UnitOutcome;
  const hardware = widthProbes(config, progress);
  // a latency target tries allocations until one measures fast enough; the others are steps of their own
  const targeted = config.targetSpeedup !== undefined || config.targetLatencyMs !== undefined
    ? await pruneForLatency(input.dense.proto, req.model, config, { modelPath: req.model, calib, progress, ...(hardware ? { hardware } : {}), data, stepsDir, provider: input.provider })
    : undefined;
  if (rounds > 1) {
    // recovery rounds prune and recover round by round, the last round's steps as in one shot
    const r = await pruneWithRounds(input.dense.proto, config, rounds, { modelPath: req.model, calib: calib!, stepsDir, progress, files, metadata, head }, resolveCompare(config, rounds));
    for (const n of r.final.pruned.notes) progress.note(n);
    roundSteps = r.rounds;
    unit = r.final;
  } else {
    // scope auto may not spend more work measuring curves than recovery may spend refitting
    const autoAnalysisMacs = scope.reason && calib ? recoveryAllowance({ macsPerSample: modelCost(input.dense.proto).macs, calibSamples: calib.count }, config.recoveryWork) : undefined;
    unit = await pruneAndRecover({
      prune: async () => {
        const pruneCtx = { modelPath: req.model, calib, progress, head, ...(hardware ? { hardware } : {}), ...(autoAnalysisMacs !== undefined ? { autoAnalysisMacs } : {}) };
        const shipForm = config.quantize === 'int8' && calib ? int8ShipForm(input.dense.proto, calib, config) : undefined;
        const checkCtx = { ...pruneCtx, data, dir: stepsDir, cacheDir: cacheDir(), provider: input.provider, ...(shipForm ? { shipForm } : {}) };
        if (targeted) {
          for (const n of targeted.pruned.notes) progress.note(n);
          return targeted.pruned;
        }
        const first = await pruneModel(input.dense.proto, config, pruneCtx);
        // scope auto's loss-per-MAC cut ships only if layer or global scope does not score clearly better held out
        const choice = scope.reason && first.scope === 'sensitivity-macs' && calib?.labels ? await chooseAutoScope(first, input.dense.proto, config, { ...pruneCtx, calib, head }) : undefined;
        const cut = choice?.pruned ?? first;
        // the width check prunes again on other widths, with the scope that was chosen
        const checked = await checkWidths(cut, input.dense.proto, { ...config, scope: cut.scope ?? config.scope }, checkCtx);
        const pruned = choice ? { ...checked, notes: [choice.note, ...checked.notes] } : checked;
        for (const n of pruned.notes) progress.note(n);
        return pruned;
      },
      metadata: (pruned) => metadata(pruned.scope ?? config.scope),
      pruneArtifact: staged ? stepFile(stepsDir, 1, 'prune') : outPath,
      recovery: { dense: input.dense.proto, calib, config, stepsDir, progress, files, head },
    });
  }
  const { pruned } = unit;
  const lastFloat = verifiedLast(unit, config);
  // quantization compresses what recovery shipped; the float file stays among the steps
  const quantized = await quantizeLast(lastFloat, calib, config, stepFile(stepsDir, unit.steps.length + 1, `quantize-${config.quantize}`), progress, input.provider, head);
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
  // intermediate recovery rounds (or a latency target's other attempts) first, then the final unit's prune and recovery
  for (const r of [...roundSteps, ...(targeted?.earlier ?? []), ...unit.steps]) measured.push(await measureRecord(r, { ...ctx, dense: dense.preds }));
  if (unit.temperature) measured[measured.length - 1].step.temperature = unit.temperature;
  if (quantized) measured.push(await measureQuantized(quantized, { ...ctx, dense: dense.preds }));
  // what was asked of pruning and what its saved file achieved, judged by the target-reduction budget; a
  // latency target asks for a speed, not a fraction (allocation.target records whether it was met)
  const pruneStep = measured.find((m) => m.step.name === stepName({ kind: 'prune' }))!.step;
  if (!targeted) pruneStep.reduction = buildReduction(dense.step, pruneStep, requestedReduction(config), pruned.channels && fromTally(pruned.channels));
  return judgeSteps(input, measured, progress, {
    targetSparsity: target,
    notes: [...pruned.notes, ...unit.notes, ...(quantized?.notes ?? [])],
    scope: pruned.scope ?? scope.scope,
    ...(pruned.sensitivity ? { sensitivity: pruned.sensitivity } : {}),
    ...(pruned.allocation ? { allocation: pruned.allocation } : {}),
    ...(unit.cutShort ? { cutShort: unit.cutShort } : {}),
  }, pruneStep.reduction, [...targetShortfall(targeted?.record), ...cutShortNote(unit.cutShort)]);
}

/** A recovery the safety stop cut short: said in the notes, and the verdict is at least `warn`. */
export function cutShortNote(c: CutShort | undefined): string[] {
  if (!c) return [];
  return [`cut short: the recovery-time-budget safety stop (${c.limit_s} s) fired during ${c.stage}, so this is not the model an uninterrupted run ships and a rerun may differ; raise recovery-time-budget (or lower recovery-work); verdict at least warn`];
}

/** What the shipped model carries in its metadata_props: who pruned it, how, and from which file. */
export function shipMetadata(model: string, config: Config, scopeUsed: string): Record<string, string> {
  return {
    'prune-guard.version': VERSION,
    'prune-guard.method': config.method,
    'prune-guard.scope': scopeUsed,
    'prune-guard.target_sparsity': String(targetSparsity(config)),
    'prune-guard.source': path.basename(model),
    'prune-guard.recovery': config.recovery,
  };
}

/**
 * The unit's last float file, checked: it must still hold the method's pattern after every recovery
 * stage, read as pruning saw it (weights behind a Cast or a constant Reshape lifted again).
 */
export function verifiedLast(unit: UnitOutcome, config: Config): string {
  const lastFloat = unit.steps[unit.steps.length - 1].artifact;
  const saved = loadModel(lastFloat).proto;
  liftWeights(saved);
  const broken = unit.pruned.verifySaved?.(saved) ?? [];
  if (broken.length > 0) throw new Error(`internal error: ${lastFloat} breaks the ${config.method} pattern: ${broken.slice(0, 3).join('; ')}`);
  return lastFloat;
}

/** A latency target the loop could not meet: said in the notes, and the verdict is at least `warn`. */
function targetShortfall(t: TargetRecord | undefined): string[] {
  if (!t || t.outcome === 'met') return [];
  const a = t.attempts[t.shipped];
  return [`latency target not met: the shipped attempt measured ${a.speedup.toFixed(2)}x of the ${t.speedup_needed.toFixed(2)}x asked at batch ${t.batch} (${t.outcome}: ${t.detail}); verdict at least warn`];
}

/**
 * Time every measured step interleaved in one pass, judge the shipped (last) step against dense (the
 * first), and build the model's ledger record: the tail every one-shot strategy shares.
 */
export async function judgeSteps(
  input: StrategyInput,
  measured: MeasuredStep[],
  progress: Progress,
  record: Pick<ModelLedgerInput, 'targetSparsity' | 'notes' | 'scope' | 'sensitivity' | 'allocation' | 'cutShort'>,
  /** what pruning was asked for and achieved; none when nothing was pruned (quantization alone) */
  reduction?: Reduction,
  /** what the run could not do as asked: each a note, and the verdict at least `warn` */
  shortfalls: readonly string[] = [],
): Promise<ModelLedger> {
  const { req, data, shifts, outPath } = input;
  const { config } = req;
  const dense = measured[0];
  const shipped = measured[measured.length - 1];
  // speed budgets sample dense (first) and the shipped step (last) until each is decided
  const speed = speedTests(req.budgets, config, 'run');
  const samples = await timeSteps(measured, data, config, input.provider, progress, speed);
  const latency = { reference: samples[0][0], candidate: samples[samples.length - 1][0], decisions: speed.decisions() };
  const judgedBudgets = judgeWithIntervals(req.budgets, dense, shipped, data, shifts, latency, config, false, reduction);
  // a structured prune exists to run faster: slower than dense at any batch is said, and at least a warn
  const speedNotes = [...shortfalls, ...structuredSpeedNotes(config, samples[0], samples[samples.length - 1])];
  for (const n of speedNotes) progress.note(n);
  const judged = speedNotes.length > 0 ? { ...judgedBudgets, verdict: overallVerdict([judgedBudgets.verdict, 'warn']) } : judgedBudgets;
  return buildModelLedger({
    ...record,
    notes: [...input.exportNotes, ...(record.notes ?? []), ...speedNotes],
    model: req.model,
    pruned: outPath,
    method: config.method,
    steps: measured,
    reference: dense,
    shipped,
    judged,
    data: { path: req.data, set: data },
    head: input.head,
    plan: input.plan,
    shifts,
    config,
  });
}

/**
 * A structured prune is there to run faster: where the shipped model measured slower than dense at any
 * batch size the ledger says so, with the cause, and the verdict is at least `warn`.
 */
export function structuredSpeedNotes(config: Config, dense: readonly number[][], final: readonly number[][]): string[] {
  if (config.method !== 'structured' && config.method !== 'hybrid') return [];
  return slowerThanDense(config.batchSizes, dense, final).map(
    (s) =>
      `speed: the shipped model measured ${s.speedup.toFixed(2)}x of dense at batch ${s.batch} (p=${s.p_value < 0.001 ? '<0.001' : s.p_value.toFixed(3)}), slower than the model it replaces: ` +
      `its kept channels run no faster on this machine (too few MACs removed to outweigh the rest of the graph, or widths onnxruntime executes slowly; round-to 0 measures the fast ones); verdict at least warn`,
  );
}
