import { DEFAULT_CONFIG, type ConcreteScope, type Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { topUpMagnitude } from './hybrid.js';
import { magnitudePrune } from './magnitude.js';
import { nmPrune, parseNM, verifyNM, type NMPattern } from './nm.js';
import { prunableWeights, type PrunableWeight } from './prunable.js';
import { resolveScope } from './resolveScope.js';
import { countSparsity } from './sparsity.js';
import type { SensitivityInfo } from './sensitivity/types.js';
import type { Progress } from '../io/progress.js';
import type { Head } from '../onnx/head.js';
import { AnalysisOverBudget } from './sensitivity/sensitivityCurves.js';
import { sensitivityPrune } from './sensitivity/sensitivityPrune.js';
import { describeStructured } from './structured/describe.js';
import type { ChannelTally } from './reduction.js';
import type { KeptChannels } from './structured/keptChannels.js';
import type { MeasureOptions } from './structured/hardware.js';
import { allocationRecord, type AllocationRecord } from './structured/record.js';
import { structuredPrune, type StructuredOptions } from './structured/structuredPrune.js';

export interface PruneContext {
  /** the input model file, for messages */
  modelPath: string;
  calib?: Dataset;
  /** shows sensitivity analysis progress */
  progress?: Progress;
  /**
   * `scope: auto` chose a sensitivity scope: curves that would take more multiply-accumulates than this
   * fall back to global with a note (a scope the user asked for is measured however much work it takes)
   */
  autoAnalysisMacs?: number;
  /** the output judged (findHead); sensitivity curves score the model on it */
  head?: Head;
  /** structured with `round-to: 0`: where and how to measure the widths that run fast */
  hardware?: MeasureOptions;
  /** structured: each group's multiple by group name, instead of measuring (`hardware` is then unused) */
  widths?: ReadonlyMap<string, number>;
  /** structured with `widths`: whole multiples only, no halvings below them */
  wholeBlocks?: boolean;
  /** structured: allocate for a predicted latency instead of `sparsity` (the latency target's loop sets it) */
  latencyTarget?: StructuredOptions['latency'];
  /** with `latencyTarget`: each group's measured calibration-loss curve, by group name */
  lossCurves?: ReadonlyMap<string, readonly { ratio: number; increase: number }[]>;
}

export interface PruneOutcome {
  model: ModelProto;
  /** one line for the ledger's step description */
  description: string;
  /** the dense model's prunable weights: sparsity of every later step is counted against them */
  denseWeights: PrunableWeight[];
  /** things the user should know (groups skipped and why, layers kept dense) */
  notes: string[];
  /** sparsity the method aims at when it sets its own (N:M: 1 - N/M) instead of `config.sparsity` */
  targetSparsity?: number;
  /**
   * Checks the method's promise on the saved file read back from disk; returns what is broken. The
   * pipeline treats any finding as an internal error: a broken artifact is never handed on.
   */
  verifySaved?: (saved: ModelProto) => string[];
  /** the scope pruning used (`auto` resolved by resolveScope) */
  scope?: ConcreteScope;
  /** `scope: sensitivity` / `sensitivity-macs`: the measured curves and the allocation, for the ledger */
  sensitivity?: SensitivityInfo;
  /**
   * structured and hybrid: the dense model with shared constants untied (initializer names as in the
   * pruned model) and the dense channels each sliced initializer kept, so recovery can refit layers
   * whose output channels were removed against the dense output at the kept channels
   */
  structured?: { reference: ModelProto; kept: KeptChannels };
  /** structured: the widths kept counts were rounded to and, for a latency target, the latency plan */
  allocation?: AllocationRecord;
  /** structured and hybrid: the channels the target applies to, how many went, the groups left whole */
  channels?: ChannelTally;
}

/** The sparsity a run aims at: the N:M pattern's own 1 - N/M, else `config.sparsity`. */
export function targetSparsity(config: Pick<Config, 'method' | 'sparsity'>): number {
  const nm = parseNM(config.method);
  return nm ? 1 - nm.n / nm.m : config.sparsity;
}

/** What a run asks of its pruning, in the unit its method counts: channels (structured) or prunable weights. */
export function requestedReduction(config: Pick<Config, 'method' | 'sparsity'>): { unit: 'weights' | 'channels'; requested: number } {
  return config.method === 'structured' ? { unit: 'channels', requested: config.sparsity } : { unit: 'weights', requested: targetSparsity(config) };
}

/** N:M semi-structured pruning; weights without a single input axis are left dense and named in notes. */
function pruneNM(dense: ModelProto, weights: PrunableWeight[], config: Config, { n, m }: NMPattern): PruneOutcome {
  const r = nmPrune(dense, weights, n, m);
  if (r.layers.length === 0) {
    throw new UserError(`--method ${config.method}: none of the ${weights.length} prunable weights has a single input axis to group; use --method unstructured`);
  }
  const notes: string[] = [];
  const tails = r.layers.filter((l) => l.tail > 0);
  if (tails.length > 0) {
    const list = tails.map((l) => `${l.initializer} (fan-in ${l.layout.length}: last ${l.layout.length % m} per row)`).join(', ');
    const tailTotal = tails.reduce((s, l) => s + l.tail, 0);
    notes.push(`${n}:${m}: fan-in not a multiple of ${m}, so the last entries of each row stay dense (${tailTotal} weights): ${list}`);
  }
  for (const s of r.skipped) notes.push(`${n}:${m}: ${s.initializer} left dense: ${s.reason}`);
  // the default sparsity is not a user's choice; any other value is, and the pattern overrides it
  if (config.sparsity !== DEFAULT_CONFIG.sparsity && config.sparsity !== 1 - n / m) {
    notes.push(`--sparsity ${config.sparsity} is not used by --method ${config.method}: the pattern sets sparsity to ${1 - n / m}`);
  }
  const grouped = r.layers.reduce((s, l) => s + l.grouped, 0);
  const all = r.layers.reduce((s, l) => s + l.grouped + l.tail, 0);
  const pruned = r.layers.map((l) => ({ initializer: l.initializer }));
  return {
    model: r.model,
    description:
      `${n}:${m} semi-structured magnitude pruning of ${r.layers.length} weight tensors ` +
      `(the ${n} largest |w| of every ${m} along the input axis kept; ${((grouped / all) * 100).toFixed(1)}% of their weights in full groups)`,
    denseWeights: weights,
    notes,
    targetSparsity: 1 - n / m,
    verifySaved: (saved) => verifyNM(saved, pruned, n, m).map((v) => v.message),
  };
}

/** The pruning stage: one method, chosen by config, applied to a copy of the dense model. */
export async function pruneModel(dense: ModelProto, requested: Config, ctx: PruneContext): Promise<PruneOutcome> {
  // callers other than the pipeline (which resolves first, for its checks and the ledger) may pass `auto`
  const { scope } = resolveScope(requested, ctx.calib ? { labelled: ctx.calib.labels !== null } : undefined);
  const config: Config & { scope: ConcreteScope } = { ...requested, scope };
  const outcome = await pruneWithScope(dense, config, ctx);
  return { ...outcome, scope: outcome.scope ?? scope };
}

async function pruneWithScope(dense: ModelProto, config: Config & { scope: ConcreteScope }, ctx: PruneContext): Promise<PruneOutcome> {
  const weights = prunableWeights(dense, { exclude: config.exclude, keepFirstLayer: config.keepFirstLayer, keepLastLayer: config.keepLastLayer });
  if (weights.length === 0) {
    throw new UserError(`${ctx.modelPath}: no prunable Conv, ConvTranspose, Gemm or MatMul weights (after exclude globs); nothing to prune`);
  }
  if (config.scope === 'sensitivity' || config.scope === 'sensitivity-macs') return pruneBySensitivity(dense, weights, config, ctx);
  const nm = parseNM(config.method);
  if (nm) return pruneNM(dense, weights, config, nm);
  if (/^\d+:\d+$/.test(config.method)) throw new UserError(`--method ${config.method}: an N:M pattern needs 1 <= N < M, like 2:4`);
  switch (config.method) {
    case 'unstructured': {
      const cap = config.scope === 'global' ? config.maxLayerSparsity : 1;
      const r = magnitudePrune(dense, weights, config.sparsity, config.scope, cap);
      return {
        model: r.model,
        description:
          `unstructured magnitude pruning (${config.scope}) of ${weights.length} weight tensors to ${(config.sparsity * 100).toFixed(1)}%` +
          (cap < 1 ? ` (no layer above ${(cap * 100).toFixed(1)}%)` : ''),
        denseWeights: weights,
        notes: [],
      };
    }
    case 'structured':
    case 'hybrid': {
      const all = prunableWeights(dense, { exclude: [], keepFirstLayer: false, keepLastLayer: false });
      const kept = new Set(weights.map((w) => w.initializer));
      const protectedTensors = new Set(all.map((w) => w.initializer).filter((n) => !kept.has(n)));
      // hybrid: channels take half the target, magnitude pruning of what remains reaches the rest
      const channelSparsity = config.method === 'hybrid' ? config.sparsity / 2 : config.sparsity;
      const r = await structuredPrune(dense, {
        sparsity: channelSparsity, scope: config.scope, roundTo: config.roundTo, maxLayerSparsity: config.scope === 'global' ? config.maxLayerSparsity : 1, criterion: config.criterion as Exclude<Config['criterion'], 'sparsegpt'>, protectedTensors, calib: ctx.calib,
        ...recordedOrMeasured(config, ctx),
        ...(ctx.latencyTarget ? { latency: ctx.latencyTarget } : {}),
        ...(ctx.lossCurves ? { lossCurves: ctx.lossCurves } : {}),
      });
      const allocation = allocationRecord(config.roundTo, r.widths, r.latency);
      let description = describeStructured(dense, r, { criterion: config.criterion, scope: config.scope, sparsity: channelSparsity });
      let model = r.model;
      if (config.method === 'hybrid') {
        const removed = countSparsity(model, weights).overall;
        const topUp = topUpMagnitude(model, weights, config.sparsity, config, config.scope);
        model = topUp.model;
        description += `; then unstructured magnitude (${config.scope}) of the remaining weights: ${(topUp.fraction * 100).toFixed(1)}% of them zeroed (structured alone removed ${(removed * 100).toFixed(1)}% of prunable weights)`;
      }
      return { model, description: description + widthsText(allocation), denseWeights: weights, notes: r.notes, structured: { reference: r.base, kept: r.kept }, channels: r.tally, allocation };
    }
    default:
      throw new UserError(`--method ${config.method}: not available in this version yet; use --method unstructured, structured or hybrid`);
  }
}

/** Structured widths: the recorded ones when the context gives them, else measured (`round-to: 0`), else none. */
function recordedOrMeasured(config: Config, ctx: PruneContext): { widths?: ReadonlyMap<string, number>; wholeBlocks?: boolean; hardware?: MeasureOptions } {
  if (ctx.widths) return { widths: ctx.widths, ...(ctx.wholeBlocks ? { wholeBlocks: true } : {}) };
  return ctx.hardware && config.roundTo === 0 ? { hardware: ctx.hardware } : {};
}

/** The step description's note on widths: which multiples kept counts were snapped to. */
function widthsText(a: AllocationRecord): string {
  if (a.rounding === 'fixed') return `; kept counts multiples of ${a.round_to}`;
  if (!a.groups || a.groups.length === 0) return '';
  const counts = new Map<number, number>();
  for (const g of a.groups) counts.set(g.multiple, (counts.get(g.multiple) ?? 0) + 1);
  const list = [...counts].sort((x, y) => y[1] - x[1] || y[0] - x[0]).map(([m, n]) => `${m} (${n} group${n === 1 ? '' : 's'})`).join(', ');
  return `; kept counts snapped to ${a.rounding === 'measured' ? 'the widths measured to run fast' : 'recorded widths'}: multiples of ${list}`;
}

/** `scope: sensitivity`: per-layer (or per-group) ratios allocated from measured sensitivity curves. */
async function pruneBySensitivity(dense: ModelProto, weights: PrunableWeight[], config: Config, ctx: PruneContext): Promise<PruneOutcome> {
  const all = prunableWeights(dense, { exclude: [], keepFirstLayer: false, keepLastLayer: false });
  const kept = new Set(weights.map((w) => w.initializer));
  const method = config.method as 'unstructured' | 'structured';
  let started = false;
  try {
    const r = await sensitivityPrune(dense, {
      method, sparsity: config.sparsity, calib: ctx.calib!, weights, config, perMac: config.scope === 'sensitivity-macs', ...(ctx.head ? { head: ctx.head } : {}),
      protectedTensors: new Set(all.map((w) => w.initializer).filter((n) => !kept.has(n))),
      onLayer: (done, total) => {
        if (!started) ctx.progress?.stage({ kind: 'sensitivity', detail: `${method}, ${total} ${method === 'unstructured' ? 'layers' : 'groups'}`, total });
        started = true;
        ctx.progress?.update(done);
      },
      ...(ctx.autoAnalysisMacs !== undefined ? { maxMacs: ctx.autoAnalysisMacs } : {}),
      ...(method === 'structured' ? recordedOrMeasured(config, ctx) : {}),
    });
    const allocation = method === 'structured' ? allocationRecord(config.roundTo, r.widths, undefined) : undefined;
    return {
      model: r.model, description: r.description + (allocation ? widthsText(allocation) : ''), denseWeights: weights, notes: r.notes, sensitivity: r.sensitivity,
      ...(r.structured ? { structured: r.structured } : {}), ...(r.channels ? { channels: r.channels } : {}), ...(allocation ? { allocation } : {}),
    };
  } catch (e) {
    if (!(e instanceof AnalysisOverBudget)) throw e;
    // a big model under the default scope: today's global allocation rather than an analysis of hours
    const global = await pruneWithScope(dense, { ...config, scope: 'global' }, ctx);
    const note = `scope auto -> global: the ${config.scope} analysis would take about ${(e.projectedMacs / 1e9).toFixed(0)} GMAC for ${e.points} curve points over ${e.units} ${config.method === 'unstructured' ? 'layers' : 'groups'} (limit ${(e.limitMacs / 1e9).toFixed(0)} GMAC, the recovery work allowance); pass --scope ${config.scope} to measure it anyway`;
    return { ...global, notes: [note, ...global.notes], scope: 'global' };
  } finally {
    if (started) ctx.progress?.stop();
  }
}
