import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { saveModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import type { Progress } from '../io/progress.js';
import { prunableWeights, type PrunableWeight } from '../prune/prunable.js';
import type { PruneOutcome } from '../prune/pruneModel.js';
import { reestimateBatchNorm, type BatchNormBounds } from './batchNorm.js';
import { DISTILL_MAX_BYTES, distillUnfit, nodeMacsOf } from './bounds.js';
import { QUALITY_THREADS } from '../onnx/runtime/quality.js';
import { DISTILL_EPOCH_PASSES, distillEpochsThatFit, recoveryAllowance, safetyStop, WorkMeter, type CutShort, type SafetyStop, type WorkFacts } from './work.js';
import { DEFAULT_DISTILL } from './distill/distill.js';
import { improves, scoreRecord, scoreText, stageJudge, type ScoreRecord, type StageJudge, type StageScore } from './stageJudge.js';
import { distillStage, skipReason } from './distill/stage.js';
import { CommandTimedOut, externalRecovery } from './external.js';
import { DEFAULT_RECONSTRUCT, reconstruct, solveWorkOf } from './reconstruct.js';
import { batchNormBoundText, distillUnfitText, layerSkipText, temperatureSkipText, type BatchNormBound, type LayerSkip } from './refusals.js';
import { bakeTemperature, calibrateTemperature, type TemperatureFit } from './temperature.js';
import type { Head } from '../onnx/head.js';
import { defaultHead } from '../onnx/runtime/classifier.js';

/** Cost and gain of one recovery step; calibration-set numbers are what the step was judged on. */
export interface RecoveryInfo extends ScoreRecord {
  seconds: number;
}

/** Temperature scaling fitted on the labelled calibration set for this step's model. */
export interface TemperatureInfo {
  /** logits are divided by this */
  value: number;
  /** whether the division is baked into this step's saved model (--bake-temperature) */
  baked: boolean;
  calib_nll_before: number;
  calib_nll_after: number;
  calib_ece_before: number;
  calib_ece_after: number;
}

/** The recovery stages a run can keep; each is saved as NN-<stage>.onnx. */
export type RecoveryStage = 'reconstruct' | 'bn-stats' | 'distill' | 'command' | 'temperature';

/** One recovery step, saved to disk, for the pipeline to measure like any other step. */
export interface RecoveryStep {
  stage: RecoveryStage;
  description: string;
  artifact: string;
  info: RecoveryInfo;
  temperature?: TemperatureInfo;
}

export interface RecoveryOutcome {
  steps: RecoveryStep[];
  /** temperature fitted for the model that ships (the last step), when the calibration set has labels */
  temperature?: TemperatureInfo;
  /** recovery work a memory or work bound skipped or changed, one line each, for the ledger's notes */
  notes: string[];
  /** the recovery-time-budget safety stop fired: the first stage it stopped or kept from running */
  cutShort?: CutShort;
}

export interface RecoveryRequest {
  dense: ModelProto;
  pruned: ModelProto;
  /** path the pruned model was saved to (the 'prune' step's artifact) */
  prunedArtifact: string;
  denseWeights: readonly PrunableWeight[];
  calib?: Dataset;
  config: Config;
  /** data files as the user named them, handed to a recovery command */
  files: { data: string; calib?: string };
  /** folder for step artifacts: OUT/steps */
  stepsDir: string;
  progress: Progress;
  /** structured/hybrid pruning: the untied dense reference and the kept-channel map (PruneOutcome.structured) */
  structured?: PruneOutcome['structured'];
  /** false: no temperature fit after recovery (an intermediate recovery round ships nothing); default true */
  fitTemperature?: boolean;
  /** the output judged (findHead); the dense model's single classifier output (or config.output) when absent */
  head?: Head;
  /** the fidelity task: no classifier head; distillation matches these outputs to the dense model's, temperature is not fitted */
  fidelity?: { outputs: readonly string[] };
  /** this recovery's part of the run's work allowance (a recovery round's); default 1 */
  workShare?: number;
  /** the run's wall-clock safety stop, shared by its rounds; default: recovery-time-budget from now */
  stop?: SafetyStop;
}

/** columns per SparseGPT mask-selection block (the paper's default) */
const SPARSEGPT_BLOCK = 128;

/** Whether the run has stages after 'prune', which are then kept under OUT/steps. */
export function hasRecoverySteps(config: Config, calib: Dataset | undefined): boolean {
  // auto without a calibration set has nothing to recover with and runs as none
  const recovers = config.recovery !== 'none' && !(config.recovery === 'auto' && !calib);
  return recovers || config.bakeTemperature;
}

function temperatureInfo(fit: TemperatureFit, baked: boolean): TemperatureInfo {
  return { value: fit.temperature, baked, calib_nll_before: fit.nll_before, calib_nll_after: fit.nll_after, calib_ece_before: fit.ece_before, calib_ece_after: fit.ece_after };
}

export function stepFile(stepsDir: string, index: number, name: string): string {
  return path.join(stepsDir, `${String(index).padStart(2, '0')}-${name}.onnx`);
}

function fmt(s: StageScore | undefined): string {
  return s ? scoreText(s) : 'no calibration set to judge it on';
}

/** The calibration judge of this recovery: against the labels, or the dense model when the set has none. */
function judgeOf(req: RecoveryRequest, calib: Dataset): Promise<StageJudge> {
  return stageJudge(req.dense, calib, req.fidelity ? { outputs: req.fidelity.outputs } : { head: req.head! }, QUALITY_THREADS);
}

/**
 * Run the configured recovery after the 'prune' step: each kept stage is saved to
 * OUT/steps/NN-name.onnx. A stage that makes the calibration score worse is not kept, and the
 * description of the previous stage says so, so the last step is always the model that ships.
 */
export async function runRecovery(req: RecoveryRequest): Promise<RecoveryOutcome> {
  const { config, calib, progress } = req;
  const head = req.fidelity ? undefined : (req.head ?? defaultHead(req.dense, config.output));
  req = { ...req, ...(head ? { head } : {}) };
  const notes: string[] = [];
  const cut: { at?: CutShort } = {};
  const steps = await recoverySteps(req, calib, notes, cut);
  const cutShort = cut.at ? { cutShort: cut.at } : {};
  if (!calib) return { steps: steps.map((s) => s.step), notes, ...cutShort };
  const last = steps.at(-1)?.model ?? req.pruned;
  if (!head) {
    if (steps.length > 0) notes.push(`recovery: temperature not fitted: ${temperatureSkipText({ kind: 'fidelity' })}`);
    return { steps: steps.map((s) => s.step), notes, ...cutShort };
  }
  if (!calib.labels || req.fitTemperature === false) return { steps: steps.map((s) => s.step), notes, ...cutShort };
  const t0 = performance.now();
  const fit = await calibrateTemperature(last, calib, QUALITY_THREADS, head);
  if (!config.bakeTemperature) return { steps: steps.map((s) => s.step), temperature: temperatureInfo(fit, false), notes, ...cutShort };
  const baked = bakeTemperature(last, fit.temperature, head);
  const artifact = stepFile(req.stepsDir, steps.length + 2, 'temperature');
  fs.mkdirSync(req.stepsDir, { recursive: true });
  saveModel(baked, artifact);
  progress.note(`temperature ${fit.temperature.toFixed(3)} baked into the shipped model (calib ECE ${(fit.ece_before * 100).toFixed(2)}% -> ${(fit.ece_after * 100).toFixed(2)}%)`);
  const step: RecoveryStep = {
    stage: 'temperature',
    description: `${head.scores === head.output ? 'logits' : `scores before the ${head.activation}`} divided by T = ${fit.temperature.toFixed(4)}, fitted on ${calib.count} calibration samples by minimising NLL (calib ECE ${(fit.ece_before * 100).toFixed(2)}% -> ${(fit.ece_after * 100).toFixed(2)}%)`,
    artifact,
    info: { seconds: (performance.now() - t0) / 1000, calib_nll_before: fit.nll_before, calib_nll_after: fit.nll_after },
    temperature: temperatureInfo(fit, true),
  };
  return { steps: [...steps.map((s) => s.step), step], notes, ...cutShort };
}

async function recoverySteps(req: RecoveryRequest, calib: Dataset | undefined, bounded: string[], cut: { at?: CutShort }): Promise<{ step: RecoveryStep; model: ModelProto }[]> {
  const { config, progress } = req;
  if (config.recovery === 'none' || (config.recovery === 'auto' && !calib)) return [];
  fs.mkdirSync(req.stepsDir, { recursive: true });
  if (config.recovery === 'command') {
    const artifact = stepFile(req.stepsDir, 2, 'command');
    progress.stage({ kind: 'recover', work: 'command', detail: `running ${config.recoveryCommand}` });
    const t0 = performance.now();
    const judge = calib ? await judgeOf(req, calib) : undefined;
    const before = await judge?.score(req.pruned);
    const paths = { modelIn: req.prunedArtifact, modelOut: artifact, masks: `${req.stepsDir}/masks.npz`, calib: req.files.calib, data: req.files.data };
    let model: ModelProto;
    try {
      model = await externalRecovery(config.recoveryCommand, req.pruned, req.denseWeights.map((w) => w.initializer), paths, (text) => progress.output(text), {
        timeoutSeconds: progress.remainingSeconds?.(),
      });
    } catch (e) {
      if (!(e instanceof CommandTimedOut)) throw e;
      // the budget's checkpoint turns this into the run's timed-out ledger
      progress.note(`recovery: ${e.message}`);
      throw e;
    }
    const seconds = (performance.now() - t0) / 1000;
    const after = await judge?.score(model);
    const info: RecoveryInfo = { seconds, ...(before && after ? scoreRecord(before, after) : {}) };
    const description = `external recovery command \`${config.recoveryCommand}\` (masks and structure verified; ${fmt(after)}; ${seconds.toFixed(1)} s)`;
    return [{ step: { stage: 'command', description, artifact, info }, model }];
  }
  if (!calib) {
    if (config.recovery === 'auto') return [];
    throw new Error('recoverySteps: calibration set missing (checkConfig was not called)');
  }
  const judge = await judgeOf(req, calib);
  const steps: { step: RecoveryStep; model: ModelProto }[] = [];
  let current = req.pruned;
  // what each stage computes is decided by work (MACs) sized from the dense model and the calibration
  // set before any stage runs; the clock only arms the safety stop
  const facts: WorkFacts = { macsPerSample: totalMacs(req.dense), calibSamples: calib.count, solveWork: solveWorkOf(req.pruned, refitWeights(req)) };
  const work = new WorkMeter(recoveryAllowance(facts, config.recoveryWork, req.workShare ?? 1));
  const stop = withRunBudget(req.stop ?? safetyStop(config.recoveryTimeBudget), progress);
  const cutShort = (stage: CutShort['stage']): void => {
    if (cut.at) return;
    cut.at = { stage, limit_s: stop.limitSeconds };
    // the ledger's note and verdict come from the record (src/pipeline: cutShortNote)
    progress.note(`recovery: cut short during ${stage} by the recovery-time-budget safety stop (${stop.limitSeconds} s)`);
  };
  let currentScore = await judge.score(current);

  // a bound that bites is said on the progress log now and kept for the ledger's notes
  const bound = (line: string): void => {
    progress.note(line);
    bounded.push(line);
  };

  const keep = (stage: RecoveryStage, description: string, model: ModelProto, seconds: number, score: StageScore): void => {
    const artifact = stepFile(req.stepsDir, steps.length + 2, stage);
    saveModel(model, artifact);
    const info: RecoveryInfo = { seconds, ...scoreRecord(currentScore, score) };
    steps.push({ step: { stage, description, artifact, info }, model });
    current = model;
    currentScore = score;
  };

  // auto keeps distillation only when it beats its input on the held-out samples and on the calibration score
  async function distillStep(judged: boolean): Promise<void> {
    const epochs = distillEpochsThatFit({ macsPerSample: totalMacs(current), calibSamples: calib!.count }, work.left, DEFAULT_DISTILL.maxEpochs);
    const unfit = distillUnfit(current, { batch: DEFAULT_DISTILL.batch, maxBytes: DISTILL_MAX_BYTES })
      ?? (epochs === 0 ? { kind: 'work' as const, epochMacs: totalMacs(current) * calib!.count * DISTILL_EPOCH_PASSES, leftMacs: work.left } : null);
    if (unfit) {
      bound(`recovery: distillation skipped: ${distillUnfitText(unfit)}`);
      return;
    }
    // said in the step's description when the step is kept: a limit on a stage that ships nothing is no news
    const limited = epochs < DEFAULT_DISTILL.maxEpochs ? `; at most ${epochs} of ${DEFAULT_DISTILL.maxEpochs} epochs, what the recovery work allowance holds` : '';
    if (limited) progress.note(`recovery: distillation${limited.slice(1)}`);
    work.charge(epochs * totalMacs(current) * calib!.count * DISTILL_EPOCH_PASSES);
    const d = await distillStage(req.dense, current, calib!, req.denseWeights.map((w) => w.initializer), config, progress, { optional: judged, maxEpochs: epochs, stop, head: req.head, ...(req.fidelity ? { outputs: req.fidelity.outputs } : {}) });
    if (d.kind === 'skipped') {
      bound(`recovery: distillation skipped: ${skipReason(d.gap)}`);
      return;
    }
    if (d.result.stopped === 'cut-short') cutShort('distill');
    const score = await judge.score(d.model);
    if (judged && (!d.result.improved || !improves(score, currentScore))) {
      progress.note(`recovery: distillation not kept (${d.result.improved ? `${fmt(score)} vs ${fmt(currentScore)} without it` : 'no epoch improved the held-out KL'})`);
      return;
    }
    keep('distill', `${d.summary}${limited} (${fmt(score)}; ${d.seconds.toFixed(1)} s)`, d.model, d.seconds, score);
  }

  if (config.recovery === 'reconstruct' || config.recovery === 'auto') {
    // auto keeps a stage only when it improves the calibration score; reconstruct always keeps the refit
    const judged = config.recovery === 'auto';
    const t0 = performance.now();
    progress.stage({ kind: 'recover', work: 'reconstruct', detail: 'layer-wise reconstruction on the calibration set' });
    const adaptive = config.criterion === 'sparsegpt' && config.method === 'unstructured' && !req.structured;
    const r = await reconstruct(req.structured?.reference ?? req.dense, current, refitWeights(req), calib, {
      ...DEFAULT_RECONSTRUCT,
      threads: QUALITY_THREADS,
      work,
      stop,
      kept: req.structured?.kept,
      adaptiveMask: adaptive ? SPARSEGPT_BLOCK : 0,
    });
    const seconds = (performance.now() - t0) / 1000;
    if (r.cutShort) cutShort('reconstruct');
    for (const s of r.skipped) progress.note(`recovery: ${s.weight} not refit (${layerSkipText(s.reason)})`);
    const notRefit = [boundSkips(r.skipped), subsampledClause(r.subsampled, calib.count)].filter(Boolean).join('; ') || undefined;
    if (notRefit) bounded.push(`recovery: reconstruction: ${notRefit}`);
    // nothing refit (every layer skipped by a bound): the model is unchanged, so judging it would only spend a pass
    const score = r.layers.length > 0 ? await judge.score(r.model) : undefined;
    const before = r.layers.reduce((a, l) => a + l.error_before, 0) / Math.max(1, r.layers.length);
    const after = r.layers.reduce((a, l) => a + l.error_after, 0) / Math.max(1, r.layers.length);
    if (judged && score && !improves(score, currentScore)) {
      progress.note(`recovery: reconstruction not kept (${fmt(score)} vs ${fmt(currentScore)} without it)`);
    } else if (score) {
      keep(
        'reconstruct',
        `${notRefit ? `${notRefit}; ` : ''}${adaptive ? `re-chose which weights are zero (SparseGPT saliency w^2/[H^-1 Cholesky]_jj^2 in blocks of ${SPARSEGPT_BLOCK} columns; each row keeps its zero count, so every layer keeps the pruner's sparsity) and ` : ''}refit surviving weights and biases of ${r.layers.length} layers to the dense outputs on ${calib.count} calibration samples (mean relative layer error ${before.toFixed(3)} -> ${after.toFixed(3)}; ${fmt(score)}; ${seconds.toFixed(1)} s)`,
        r.model,
        seconds,
        score,
      );
    }
    if (stop.passed()) {
      if (hasBatchNorm(current)) cutShort('bn-stats');
      else if (config.recovery === 'auto') cutShort('distill');
      return steps;
    }
    await tryBatchNorm(current, calib, judge, { work }, (model, secs, s, nodes, bound) => keep('bn-stats', `re-estimated running mean/var of ${nodes} BatchNormalization nodes on the calibration set${bound ? ` (${batchNormBoundText(bound)})` : ''} (${fmt(s)}; ${secs.toFixed(1)} s)`, model, secs, s), () => currentScore, (refusal) => {
      const why = batchNormRefusalText(refusal);
      progress.note(`recovery: BatchNorm re-estimation not kept (${why})`);
      if (refusal.kind === 'bound') bounded.push(`recovery: BatchNorm re-estimation skipped: ${why}`);
    });
    if (config.recovery === 'auto') {
      if (stop.passed()) cutShort('distill');
      else await distillStep(true);
    }
    return steps;
  }
  if (config.recovery === 'distill') {
    await distillStep(false);
    return steps;
  }
  throw new UserError(`--recovery ${config.recovery}: not available in this version yet; use --recovery auto, reconstruct, distill, command or none`);
}

/**
 * The weights reconstruction refits: the prunable ones, plus under structured pruning every layer
 * weight surgery sliced (an excluded layer's fan-in shrinks when its producer loses channels).
 */
export function refitWeights(req: Pick<RecoveryRequest, 'denseWeights' | 'structured'>): string[] {
  const names = new Set(req.denseWeights.map((w) => w.initializer));
  if (req.structured) for (const w of prunableWeights(req.structured.reference, EVERY_LAYER)) if (req.structured.kept.has(w.initializer)) names.add(w.initializer);
  return [...names];
}

const EVERY_LAYER = { exclude: [], keepFirstLayer: false, keepLastLayer: false };

/** Why BatchNorm re-estimation was not kept. */
type BatchNormRefusal =
  /** the work left allowed no pass at all */
  | { kind: 'bound'; bound: BatchNormBound }
  /** it made the calibration score worse */
  | { kind: 'worse'; score: StageScore; without: StageScore };

function batchNormRefusalText(r: BatchNormRefusal): string {
  switch (r.kind) {
    case 'bound':
      return batchNormBoundText(r.bound);
    case 'worse':
      return `${fmt(r.score)} vs ${fmt(r.without)} without it`;
  }
}

/** BN statistics re-estimation, kept only when it improves the calibration score. */
async function tryBatchNorm(
  model: ModelProto,
  calib: Dataset,
  judge: StageJudge,
  bounds: BatchNormBounds,
  accept: (model: ModelProto, seconds: number, score: StageScore, nodes: number, bound?: BatchNormBound) => void,
  currentScore: () => StageScore,
  reject: (refusal: BatchNormRefusal) => void,
): Promise<void> {
  if (!hasBatchNorm(model)) return;
  const base = currentScore();
  const t0 = performance.now();
  const bn = await reestimateBatchNorm(model, calib, QUALITY_THREADS, bounds);
  if (bn.nodes.length === 0) return bn.bound ? reject({ kind: 'bound', bound: bn.bound }) : undefined;
  const seconds = (performance.now() - t0) / 1000;
  const score = await judge.score(bn.model);
  if (!improves(score, base)) return reject({ kind: 'worse', score, without: base });
  accept(bn.model, seconds, score, bn.nodes.length, bn.bound);
}

/** Multiply-accumulates of one sample through `model` (shapes at batch 1). */
function totalMacs(model: ModelProto): number {
  let total = 0;
  for (const m of nodeMacsOf(model).values()) total += m;
  return total;
}

function hasBatchNorm(model: ModelProto): boolean {
  return model.graph!.node.some((n) => n.opType === 'BatchNormalization');
}

/** One clause on the layers refit from a subset of the calibration set to fit the work allowance, or undefined. */
function subsampledClause(subsampled: readonly { weight: string; samples: number }[], count: number): string | undefined {
  if (subsampled.length === 0) return undefined;
  const shown = subsampled.slice(0, 3).map((s) => `${s.weight} on ${s.samples}`).join(', ');
  const more = subsampled.length > 3 ? ` and ${subsampled.length - 3} more` : '';
  return `${subsampled.length} layer${subsampled.length > 1 ? 's' : ''} refit from fewer of the ${count} calibration samples to fit the recovery work allowance (${shown}${more})`;
}

/**
 * One clause for the step description on the layers a bound kept from being refit (memory, time),
 * or undefined when none was: the ledger says which bound bit and where, not only the progress log.
 */
function boundSkips(skipped: readonly { weight: string; reason: LayerSkip }[]): string | undefined {
  const memory = skipped.filter((s) => s.reason.kind === 'memory');
  const time = skipped.filter((s) => s.reason.kind === 'work');
  const cut = skipped.filter((s) => s.reason.kind === 'time');
  const parts: string[] = [];
  const names = (l: typeof skipped) => (l.length <= 3 ? l.map((s) => s.weight).join(', ') : `${l.slice(0, 2).map((s) => s.weight).join(', ')} and ${l.length - 2} more`);
  if (memory.length) parts.push(`${memory.length} layer${memory.length > 1 ? 's' : ''} not refit for memory (${names(memory)}: ${layerSkipText(memory[0].reason)})`);
  if (time.length) parts.push(`${time.length} layer${time.length > 1 ? 's' : ''} not refit for work (${names(time)}: ${layerSkipText(time[0].reason)}; a larger recovery-work refits them)`);
  if (cut.length) parts.push(`${cut.length} layer${cut.length > 1 ? 's' : ''} not refit (${names(cut)}: ${layerSkipText(cut[0].reason)})`);
  return parts.length ? parts.join('; ') : undefined;
}

/**
 * The run's --time-budget stops recovery too, so no layer is refit and no epoch started past it: the run
 * then stops within one layer's time instead of finishing all of recovery first.
 */
function withRunBudget(stop: SafetyStop, progress: Progress): SafetyStop {
  return { ...stop, passed: () => stop.passed() || progress.remainingSeconds?.() === 0 };
}
