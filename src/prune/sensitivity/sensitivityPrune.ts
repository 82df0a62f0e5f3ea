import type { Config } from '../../config/schema.js';
import type { Dataset } from '../../data/dataset.js';
import { QUALITY_THREADS } from '../../onnx/runtime/quality.js';
import { UserError } from '../../errors.js';
import type { SensitivityInfo, SensitivityLayer } from './types.js';
import { modelCost } from '../../onnx/flops.js';
import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import { ModelEditor } from '../../onnx/edit.js';
import { tensorToFloat32 } from '../../onnx/tensor.js';
import { applyMask, magnitudeMask } from '../magnitude.js';
import type { PrunableWeight } from '../prunable.js';
import type { ChannelTally } from '../reduction.js';
import { describeStructured } from '../structured/describe.js';
import type { MeasureOptions } from '../structured/hardware.js';
import type { KeptChannels } from '../structured/keptChannels.js';
import { structuredGroups, structuredPrune, type StructuredResult } from '../structured/structuredPrune.js';
import { allocateSparsity, DEFAULT_CAP, lossAtKept, unitSavings, type LayerCurve } from './allocateSparsity.js';
import { defaultHead } from '../../onnx/runtime/classifier.js';
import type { Head } from '../../onnx/head.js';
import { calibScorer, DEFAULT_SENSITIVITY_SAMPLES, type CalibScorer } from './calibScorer.js';
import { DEFAULT_RATIOS, groupUnits, sensitivityCurves, weightUnits } from './sensitivityCurves.js';

export interface SensitivityOutcome {
  model: ModelProto;
  description: string;
  notes: string[];
  sensitivity: SensitivityInfo;
  /** structured: the untied dense reference and kept-channel map, so reconstruction can refit output-pruned layers */
  structured?: { reference: ModelProto; kept: KeptChannels };
  /** structured with measured widths: the rounding table */
  widths?: StructuredResult['widths'];
  channels?: ChannelTally;
}

export interface SensitivityRequest {
  method: 'unstructured' | 'structured';
  sparsity: number;
  calib: Dataset;
  /** prunable weights after exclude / keep-first / keep-last (unstructured) */
  weights: readonly PrunableWeight[];
  /** tensors structured pruning must leave alone */
  protectedTensors: ReadonlySet<string>;
  config: Pick<Config, 'roundTo' | 'criterion' | 'latency' | 'output'>;
  /** the output judged; the model's single classifier output (or config.output) when absent */
  head?: Head;
  /** structured: rank calibration loss per MAC saved (`scope: sensitivity-macs`) instead of per channel */
  perMac?: boolean;
  onLayer?: (done: number, total: number) => void;
  /** stop with AnalysisOverBudget when the curves would take more MACs than this (scope auto on big models) */
  maxMacs?: number;
  /** structured: snap the allocated counts to the widths that run fast (measured) */
  hardware?: MeasureOptions;
  /** structured: snap to these multiples by group name instead of measuring */
  widths?: ReadonlyMap<string, number>;
  /** with `widths`: whole multiples only */
  wholeBlocks?: boolean;
}

/**
 * Loss per MAC saved: 1 ranks purely by it (NetAdapt/AMC-style). Measured against 0.5 and plain
 * sensitivity on the fixtures and the real-world model, README "Scope auto".
 */
export const MAC_COST_EXPONENT = 1;

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

type StructuredUnitOptions = Parameters<typeof groupUnits>[1];
interface Analysis {
  scorer: CalibScorer;
  units: ReturnType<typeof weightUnits> | ReturnType<typeof groupUnits>;
  curves: Awaited<ReturnType<typeof sensitivityCurves>>;
  /** what measuring took, reported again when the analysis is reused */
  seconds: number;
}

/**
 * One analysis per dense model, calibration set and request: a whole-model width check prunes the same
 * model again on other widths, and the curves do not depend on widths, so they are measured once.
 */
const analyses = new WeakMap<ModelProto, Map<string, { calib: Dataset; analysis: Promise<Analysis> }>>();

function analyse(dense: ModelProto, req: SensitivityRequest, structuredOpts: StructuredUnitOptions, perMac: boolean): Promise<Analysis> {
  const key = JSON.stringify([req.method, perMac, req.config.criterion, req.config.output ?? null, req.head ?? null, req.maxMacs ?? null, [...req.protectedTensors].sort(), req.weights.map((w) => w.initializer)]);
  const known = analyses.get(dense)?.get(key);
  if (known && known.calib === req.calib) return known.analysis;
  const analysis = (async (): Promise<Analysis> => {
    const t0 = performance.now();
    const scorer = await calibScorer(dense, req.calib, { maxSamples: DEFAULT_SENSITIVITY_SAMPLES, threads: QUALITY_THREADS, head: req.head ?? defaultHead(dense, req.config.output) });
    // every score is one pass of (a pruned copy of) the dense model over the scored samples
    const limit = req.maxMacs !== undefined ? { macs: req.maxMacs, scoreMacs: modelCost(dense).macs * scorer.samples } : undefined;
    const units = req.method === 'unstructured' ? weightUnits(dense, req.weights) : groupUnits(dense, structuredOpts);
    if (units.length === 0) throw new UserError(`--scope sensitivity: the model has no prunable ${req.method === 'unstructured' ? 'weights' : 'channel groups'} after exclusions; use --scope global`);
    const curves = await sensitivityCurves(units, scorer, DEFAULT_RATIOS, req.onLayer, perMac ? (m) => modelCost(m).macs : undefined, limit);
    return { scorer, units, curves, seconds: (performance.now() - t0) / 1000 };
  })();
  const forModel = analyses.get(dense) ?? new Map();
  forModel.set(key, { calib: req.calib, analysis });
  analyses.set(dense, forModel);
  // a failed analysis (over budget, no units) is not kept: the next call measures and fails the same way
  analysis.catch(() => forModel.delete(key));
  return analysis;
}

/**
 * Sensitivity-guided pruning: measure each layer (or group) pruned alone on the calibration set, choose
 * per-layer ratios that meet the global target while minimising the predicted loss increase, then prune
 * every layer by magnitude to exactly its count (or every group to its channel count).
 */
export async function sensitivityPrune(dense: ModelProto, req: SensitivityRequest): Promise<SensitivityOutcome> {
  const t0 = performance.now();
  const structuredOpts = { roundTo: 1, criterion: req.config.criterion as Exclude<typeof req.config.criterion, 'sparsegpt'>, protectedTensors: req.protectedTensors, calib: req.calib };
  const perMac = req.perMac === true && req.method === 'structured';
  const { scorer, units, curves, seconds: analysisSeconds } = await analyse(dense, req, structuredOpts, perMac);
  const layerCurves: LayerCurve[] = curves.map((c, i) => ({
    size: c.size,
    maxUnits: units[i].maxUnits,
    points: c.points.map((p) => ({ ratio: p.ratio, increase: p.calib_nll - scorer.dense.nll })),
    ...(c.macs_per_unit !== undefined ? { unitCost: c.macs_per_unit } : {}),
  }));
  const costExponent = perMac ? MAC_COST_EXPONENT : 0;
  const allocation = allocateSparsity(layerCurves, req.sparsity, { cap: DEFAULT_CAP, costExponent });
  const notes: string[] = [];
  let model: ModelProto;
  let description: string;
  let allocated = allocation.ratios;
  let structured: { reference: ModelProto; kept: KeptChannels } | undefined;
  let widths: StructuredResult['widths'];
  let channels: ChannelTally | undefined;
  if (req.method === 'unstructured') {
    model = pruneCounts(dense, req.weights, allocation.pruned);
    description = `unstructured magnitude pruning (sensitivity) of ${req.weights.length} weight tensors to ${pct(req.sparsity)}: per-layer ratios from each layer's calibration-loss curve`;
  } else {
    const { groups } = structuredGroups(dense, req.protectedTensors);
    const byName = new Map(groups.filter((g) => !g.skip && g.size > 1).map((g) => [g.name, g]));
    const keptUnits = new Map<number, number>();
    allocated = [];
    curves.forEach((c, i) => {
      const g = byName.get(c.name)!;
      // heads go whole: the channel count is rounded to the group's block
      const keep = Math.max(1, Math.round((g.size - allocation.pruned[i]) / g.block));
      keptUnits.set(g.root, keep);
      allocated.push(1 - (keep * g.block) / g.size);
    });
    const r = await structuredPrune(dense, { ...structuredOpts, sparsity: req.sparsity, scope: 'global', keptUnits, snapLoss: snapLosses(curves, layerCurves, costExponent), ...widthSource(req) });
    notes.push(...r.notes);
    widths = r.widths;
    model = r.model;
    structured = { reference: r.base, kept: r.kept };
    channels = r.tally;
    description = describeStructured(dense, r, { criterion: req.config.criterion, scope: perMac ? 'sensitivity-macs' : 'sensitivity', sparsity: req.sparsity });
  }
  if (req.method === 'structured' && req.config.roundTo > 1) notes.push(`--round-to ${req.config.roundTo} is not applied with --scope ${perMac ? 'sensitivity-macs' : 'sensitivity'}: kept channel counts come from the allocation`);
  const seconds = analysisSeconds + (performance.now() - t0) / 1000;
  notes.push(
    `sensitivity: ${curves.length} ${req.method === 'unstructured' ? 'layers' : 'groups'} x ${DEFAULT_RATIOS.length} ratios measured on ${scorer.samples} calibration samples ` +
      `(${againstText(scorer)}) in ${seconds.toFixed(1)} s` +
      (perMac ? '; channels removed where the predicted loss per MAC saved is smallest' : ''),
  );
  return {
    model,
    description,
    notes,
    ...(structured ? { structured } : {}),
    ...(widths ? { widths } : {}),
    ...(channels ? { channels } : {}),
    sensitivity: {
      ...sensitivityRecord(scorer, curves, allocated, allocation.predictedIncrease, seconds, req.method === 'unstructured' ? 'weights' : 'channels'),
      allocation: perMac ? 'loss-per-mac' : 'loss',
    },
  };
}

/** Where the structured prune takes its widths from, as the request gives them (recorded widths win, as in structuredPrune). */
function widthSource(req: SensitivityRequest): Pick<SensitivityRequest, 'widths' | 'wholeBlocks' | 'hardware'> {
  return { ...(req.widths ? { widths: req.widths } : {}), ...(req.wholeBlocks ? { wholeBlocks: true } : {}), ...(req.hardware ? { hardware: req.hardware } : {}) };
}

/**
 * Each group's predicted loss at a kept count, from the curves the allocation ranked by (made monotone;
 * per MAC saved for sensitivity-macs), so that rounding to fast widths trades channels by the same
 * measure: a group the curves call sensitive is not cut to make up for a group the widths kept wider.
 */
function snapLosses(curves: readonly { name: string }[], layers: readonly LayerCurve[], costExponent: number): Map<string, (kept: number) => number> {
  const { weight } = unitSavings(layers, costExponent);
  return new Map(
    curves.map((c, i) => {
      const at = lossAtKept(layers[i].points, layers[i].size);
      return [c.name, (kept: number) => at(kept) / weight[i]];
    }),
  );
}

const againstText = (scorer: CalibScorer): string => (scorer.against === 'labels' ? 'NLL and accuracy vs labels' : 'KL and agreement vs the dense model: no labels');

/** The ledger's `sensitivity` record: the measured curves with the ratio each unit was allocated. */
function sensitivityRecord(
  scorer: CalibScorer,
  curves: readonly Omit<SensitivityLayer, 'allocated'>[],
  allocated: readonly number[],
  predictedIncrease: number,
  seconds: number,
  unit: SensitivityInfo['unit'],
): SensitivityInfo {
  return {
    unit,
    against: scorer.against,
    calib_samples: scorer.samples,
    ratios: [0, ...DEFAULT_RATIOS],
    dense: { calib_nll: scorer.dense.nll, calib_accuracy: scorer.dense.accuracy },
    cap: DEFAULT_CAP,
    predicted_increase: predictedIncrease,
    seconds,
    layers: curves.map((c, i) => ({ ...c, allocated: allocated[i] })),
  };
}

/** Unstructured sensitivity measured once on the dense model, reusable for any target (schedules, rounds). */
export interface UnstructuredSensitivityPlan {
  /** zeros per weight tensor (in `weights` order) for a target fraction of all prunable weights */
  counts(target: number): number[];
  /** the ledger's record, with `allocated` as chosen for `target` */
  info(target: number): SensitivityInfo;
  notes: string[];
}

/**
 * Measures every prunable weight tensor's curve once on the dense model; each target is then allocated
 * from those same curves. Counts for a higher target are raised to at least a lower target's counts, so a
 * schedule that prunes the recovered model of the step before keeps every earlier zero (zeros are the
 * smallest magnitudes) and only adds new ones.
 */
export async function unstructuredSensitivityPlan(
  dense: ModelProto,
  req: Pick<SensitivityRequest, 'calib' | 'weights' | 'config' | 'onLayer' | 'head'>,
): Promise<UnstructuredSensitivityPlan> {
  const t0 = performance.now();
  const scorer = await calibScorer(dense, req.calib, { maxSamples: DEFAULT_SENSITIVITY_SAMPLES, threads: QUALITY_THREADS, head: req.head ?? defaultHead(dense, req.config.output) });
  const units = weightUnits(dense, req.weights);
  if (units.length === 0) throw new UserError('--scope sensitivity: the model has no prunable weights after exclusions; use --scope global');
  const curves = await sensitivityCurves(units, scorer, DEFAULT_RATIOS, req.onLayer);
  const seconds = (performance.now() - t0) / 1000;
  const layers = curves.map((c, i) => ({ size: c.size, maxUnits: units[i].maxUnits, points: c.points.map((p) => ({ ratio: p.ratio, increase: p.calib_nll - scorer.dense.nll })) }));
  let floor: number[] = curves.map(() => 0);
  const allocate = (target: number) => allocateSparsity(layers, target, { cap: DEFAULT_CAP });
  return {
    counts(target) {
      const a = allocate(target).pruned.map((k, i) => Math.max(k, floor[i]));
      floor = a;
      return a;
    },
    info(target) {
      const a = allocate(target);
      return sensitivityRecord(scorer, curves, a.ratios, a.predictedIncrease, seconds, 'weights');
    },
    notes: [
      `sensitivity: ${curves.length} layers x ${DEFAULT_RATIOS.length} ratios measured once on the dense model on ${scorer.samples} calibration samples ` +
        `(${againstText(scorer)}) in ${seconds.toFixed(1)} s`,
    ],
  };
}

/** Magnitude pruning with an exact zero count per tensor. */
export function pruneCounts(dense: ModelProto, weights: readonly PrunableWeight[], counts: readonly number[]): ModelProto {
  const ed = ModelEditor.copyOf(dense);
  weights.forEach((w, i) => {
    const values = tensorToFloat32(ed.initializer(w.initializer)!);
    ed.replaceInitializer(w.initializer, applyMask(values, magnitudeMask([values], counts[i])[0]));
  });
  return ed.model;
}

/**
 * Each prunable channel group's measured calibration-loss increase when pruned alone (the curves of
 * `scope: sensitivity`), by group name: a latency target weighs channels by them when `--calib` has labels.
 */
export async function groupLossCurves(
  dense: ModelProto,
  calib: Dataset,
  opts: { protectedTensors: ReadonlySet<string>; criterion: Config['criterion']; onLayer?: (done: number, total: number) => void },
): Promise<{ curves: Map<string, { ratio: number; increase: number }[]>; note: string }> {
  const t0 = performance.now();
  const scorer = await calibScorer(dense, calib, { maxSamples: DEFAULT_SENSITIVITY_SAMPLES, threads: QUALITY_THREADS });
  const units = groupUnits(dense, { roundTo: 1, criterion: opts.criterion as Exclude<Config['criterion'], 'sparsegpt'>, protectedTensors: opts.protectedTensors, calib });
  const curves = await sensitivityCurves(units, scorer, DEFAULT_RATIOS, opts.onLayer);
  const seconds = (performance.now() - t0) / 1000;
  return {
    curves: new Map(curves.map((c) => [c.name, c.points.map((p) => ({ ratio: p.ratio, increase: p.calib_nll - scorer.dense.nll }))])),
    note: `latency target: ${curves.length} groups x ${DEFAULT_RATIOS.length} ratios measured on ${scorer.samples} calibration samples (${againstText(scorer)}) in ${seconds.toFixed(1)} s; channels removed where the predicted loss per millisecond saved is smallest`,
  };
}
