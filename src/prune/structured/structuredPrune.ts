import type { Dataset } from '../../data/dataset.js';
import { UserError } from '../../errors.js';
import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import { channelMeanAbs } from '../criteria/activations.js';
import { type Criterion, type Importance, activationImportance, bnScaleImportance, magnitudeImportance } from '../criteria/importance.js';
import { type ChannelTally, channelTally } from '../reduction.js';
import { allocate, keepMask } from './allocate.js';
import { snapToWidths } from './widths.js';
import { lossAtKept } from '../sensitivity/allocateSparsity.js';
import { type DependencyAnalysis, type DependencyGroup, analyzeDependencies } from './depgraph.js';
import { cacheDir } from '../../io/measureCache.js';
import { groupMultiples, measureLayerTables, measureProbes, type MeasureOptions, type WidthTable } from './hardware.js';
import { allocateForLatency, capAtEvenness, capFloor, evenCap, splitDense, uniformForLatency, type LatencyAllocation, type LatencyPlan, type Spread } from './latencyModel.js';
import { type KeptChannels, keptChannels } from './keptChannels.js';
import { macLayers } from './macLayers.js';
import { type SkipReason, renderSkip } from './skip.js';
import { removeChannels } from './surgery.js';
import { untieConstants } from './untie.js';

export interface StructuredOptions {
  sparsity: number;
  scope: 'global' | 'layer';
  roundTo: number;
  /** global scope: no group loses more than this fraction of its units (1 or unset = no cap) */
  maxLayerSparsity?: number;
  criterion: Criterion;
  /** constants that must stay untouched (exclude globs, keep-first/last-layer): their groups are skipped */
  protectedTensors: ReadonlySet<string>;
  calib?: Dataset;
  /**
   * per-group override of the allocation (sensitivity analysis): group root -> units (channels, or heads
   * for attention groups) to keep; prunable groups not in the map keep all their units
   */
  keptUnits?: ReadonlyMap<number, number>;
  /**
   * hardware-aware widths: measure (or read from the cache) how each layer kind's latency responds to
   * channel counts and snap kept counts to the multiples that pay; `roundTo` > 1 takes precedence
   */
  hardware?: MeasureOptions;
  /** instead of measuring: each group's multiple as a recorded table has it (by group name) */
  widths?: ReadonlyMap<string, number>;
  /** snap to whole multiples only, never to a halving below one (allowedWidths) */
  wholeBlocks?: boolean;
  /**
   * allocate by latency instead of `sparsity`: keep the most importance whose predicted latency at
   * `batch` fits `budgetMs`, predicted from per-layer tables and the dense model's measured `denseMs`
   */
  latency?: {
    batch: number;
    denseMs: number;
    budgetMs: number;
    /**
     * how the cut is spread: capped with evenness 0 lets the costs concentrate it (up to
     * `maxLayerSparsity` per group), 1 caps every group at the tightest fraction that still reaches the
     * budget (capAtEvenness); uniform takes the same fraction from every group. Default: capped at 0
     */
    spread?: Spread;
  };
  /**
   * with `latency`: each group's measured calibration-loss increase when pruned alone to a ratio (by
   * group name), so the allocation removes channels where loss per millisecond saved is smallest
   */
  lossCurves?: ReadonlyMap<string, readonly { ratio: number; increase: number }[]>;
  /**
   * with `keptUnits` from a sensitivity allocation: each group's predicted loss at a kept count (by group
   * name), so snapping to fast widths moves channels where that allocation predicts the least loss
   */
  snapLoss?: ReadonlyMap<string, (kept: number) => number>;
}


export interface GroupOutcome extends DependencyGroup {
  kept: number;
}

export interface StructuredResult {
  model: ModelProto;
  /** the input with shared constants untied: `analysis` and `keep` refer to it */
  base: ModelProto;
  analysis: DependencyAnalysis;
  keep: Map<number, Uint8Array>;
  /** every group found, with its kept count (= size when skipped) */
  groups: GroupOutcome[];
  /** per sliced initializer of `base`, per axis, the dense indices `model` kept */
  kept: KeptChannels;
  /** channels the target applies to, how many went, and every group left whole with its reason */
  tally: ChannelTally;
  notes: string[];
  /** hardware-aware widths: what was measured and each group's multiple */
  widths?: WidthTable | { groups: WidthTable['groups'] };
  latency?: LatencyPlan;
}

/** Dependency analysis, importance, allocation and surgery, each its own step (as Torch-Pruning splits them). */
export async function structuredPrune(input: ModelProto, opts: StructuredOptions): Promise<StructuredResult> {
  const { model, analysis, groups } = structuredGroups(input, opts.protectedTensors);
  const prunable = groups.filter((g) => !g.skip && g.size > 1);
  const notes: string[] = [];
  const channelImportance = await groupImportance(model, analysis, opts, notes);
  // allocation works in units: channels, or whole heads for attention groups (block > 1)
  const units = prunable.map((g) => ({ root: g.root, size: g.size / g.block }));
  const unitImportance = new Map([...channelImportance].map(([root, s]) => [root, perBlock(s, analysis.spaces.block(root))]));
  const keptUnits = new Map<number, number>();
  if (opts.keptUnits) {
    for (const u of units) keptUnits.set(u.root, Math.max(1, Math.min(u.size, opts.keptUnits.get(u.root) ?? u.size)));
  } else {
    const plain = allocate(units.filter((u) => analysis.spaces.block(u.root) === 1), unitImportance, opts);
    const heads = allocate(units.filter((u) => analysis.spaces.block(u.root) > 1), unitImportance, { ...opts, roundTo: 1 });
    for (const [r, k] of [...plain, ...heads]) keptUnits.set(r, k);
  }
  const widths = opts.roundTo > 1 ? undefined : await groupWidths(model, analysis, prunable, opts);
  let latency: LatencyPlan | undefined;
  if (opts.latency) {
    const plain = units.filter((u) => analysis.spaces.block(u.root) === 1);
    const multiple = new Map((widths?.groups ?? plain.map((u) => ({ root: u.root, multiple: Math.max(1, opts.roundTo) }))).map((g) => [g.root, g.multiple]));
    const layers = macLayers(model, analysis);
    const tableWidths = plain.map((u) => ({ root: u.root, name: '', multiple: multiple.get(u.root) ?? 1, from: [] }));
    const tables = await measureLayerTables(layers, tableWidths, { batch: opts.latency.batch, threads: opts.hardware?.threads ?? 1, cacheDir: opts.hardware?.cacheDir ?? cacheDir(), onLayer: opts.hardware?.onProbe });
    const split = splitDense(tables, opts.latency.denseMs);
    const curves = new Map<number, (kept: number) => number>();
    for (const g of prunable) {
      const points = opts.lossCurves?.get(g.name);
      if (points) curves.set(g.root, lossAtKept(points, g.size / g.block));
    }
    const cost = (root: number, from: number, to: number): number | undefined => {
      const f = curves.get(root);
      return f ? f(to) - f(from) : undefined;
    };
    const free = plain.map((u) => ({ root: u.root, size: u.size, multiple: multiple.get(u.root) ?? 1, scores: normalised(unitImportance.get(u.root)!) }));
    const maxCap = opts.maxLayerSparsity ?? 1;
    const spread = opts.latency.spread ?? { kind: 'capped', evenness: 0 };
    let plan: LatencyAllocation;
    let cap: number;
    if (spread.kind === 'uniform') {
      // the layer-scope allocation at a fraction, on the same fast widths a `--scope layer` run snaps to
      const keptAt = (fraction: number): Map<number, number> => {
        const even = allocate(plain, unitImportance, { ...opts, sparsity: fraction, scope: 'layer', roundTo: 1 });
        return snapToWidths(free.map((g) => ({ ...g, kept: even.get(g.root)! })));
      };
      plan = uniformForLatency(keptAt, tables, split, opts.latency.budgetMs, maxCap);
      cap = Math.max(0, ...free.map((g) => 1 - plan.kept.get(g.root)! / g.size));
    } else {
      cap = capAtEvenness(spread.evenness, spread.evenness > 0 ? evenCap(free, tables, split, opts.latency.budgetMs, maxCap) : maxCap, maxCap);
      plan = allocateForLatency(free.map((g) => ({ ...g, minKept: capFloor(g.size, cap) })), tables, split, opts.latency.budgetMs, cost);
    }
    for (const u of units) keptUnits.set(u.root, plan.kept.get(u.root) ?? u.size);
    latency = { batch: opts.latency.batch, dense_ms: opts.latency.denseMs, budget_ms: opts.latency.budgetMs, rest_ms: split.restMs, layer_scale: split.scale, predicted_ms: plan.predictedMs, reached: plan.reached, kept: plain.map((u) => plan.kept.get(u.root) ?? u.size), max_group_ratio: cap, evenness: spread.kind === 'uniform' ? 1 : spread.evenness, spread: spread.kind, layers: tables };
    if (!plan.reached) notes.push(`latency target: every channel group is at its smallest fast width${cap < 1 ? ` or loses ${(cap * 100).toFixed(1)}% of its channels` : ''} and the predicted ${plan.predictedMs.toFixed(3)} ms is still above the ${opts.latency.budgetMs.toFixed(3)} ms budget`);
  } else if (widths) {
    const multiple = new Map(widths.groups.map((g) => [g.root, g.multiple]));
    const plain = units.filter((u) => analysis.spaces.block(u.root) === 1);
    const nameOf = new Map(prunable.map((g) => [g.root, g.name]));
    const snapped = snapToWidths(
      plain.map((u) => {
        const lossAt = opts.snapLoss?.get(nameOf.get(u.root)!);
        const cap = opts.scope === 'global' ? (opts.maxLayerSparsity ?? 1) : 1;
        return { root: u.root, size: u.size, multiple: multiple.get(u.root) ?? 1, kept: keptUnits.get(u.root)!, scores: normalised(unitImportance.get(u.root)!), ...(lossAt ? { lossAt } : {}), ...(cap < 1 ? { minKept: capFloor(u.size, cap) } : {}) };
      }),
      !opts.wholeBlocks,
    );
    const asked = plain.reduce((n, u) => n + u.size - keptUnits.get(u.root)!, 0);
    const got = plain.reduce((n, u) => n + u.size - snapped.get(u.root)!, 0);
    if (got !== asked) notes.push(`channel widths: ${got} channels removed instead of the ${asked} the allocation asked for, the nearest total the fast widths allow`);
    for (const [r, k] of snapped) keptUnits.set(r, k);
  }
  const keptCount = new Map<number, number>();
  const keep = new Map<number, Uint8Array>();
  for (const g of prunable) {
    const k = keptUnits.get(g.root)!;
    keptCount.set(g.root, k * g.block);
    if (k * g.block < g.size) keep.set(g.root, expandBlocks(keepMask(unitImportance.get(g.root)!, k), g.block));
  }
  const pruned = removeChannels(model, analysis, keep);
  const outcome = groups.map((g) => ({ ...g, kept: keep.has(g.root) ? keptCount.get(g.root)! : g.size }));
  for (const g of outcome) if (g.skip) notes.push(`group ${g.name} (${g.size} channels) not pruned: ${renderSkip(g.skip)}`);
  return { model: pruned, base: model, analysis, keep, groups: outcome, notes, kept: keptChannels(model, analysis, keep), tally: channelTally(outcome), ...(widths ? { widths } : {}), ...(latency ? { latency } : {}) };
}

/** Importance divided by the group's mean, so step costs compare across groups as the global ranking does. */
function normalised(scores: Float64Array): Float64Array {
  let mean = 0;
  for (const v of scores) mean += v;
  mean = mean / scores.length || 1;
  return scores.map((v) => v / mean);
}

/** Each prunable channel group's multiple: given by a recorded table, or measured. */
async function groupWidths(model: ModelProto, analysis: DependencyAnalysis, prunable: readonly DependencyGroup[], opts: StructuredOptions): Promise<StructuredResult['widths']> {
  const plain = prunable.filter((g) => g.block === 1);
  if (opts.widths) return { groups: plain.map((g) => ({ root: g.root, name: g.name, multiple: opts.widths!.get(g.name) ?? 1, from: ['recorded'] })) };
  if (!opts.hardware) return undefined;
  const layers = macLayers(model, analysis);
  const table = await measureProbes(layers.filter((l) => plain.some((g) => l.inRoots.includes(g.root) || l.outRoots.includes(g.root))), opts.hardware);
  return { ...table, groups: groupMultiples(layers, table.probes, plain) };
}

/**
 * The model with shared constants untied, its dependency analysis, and every group with why it is skipped
 * (its own reason, or a protected tensor in it). Roots are stable for the same input, so they can key
 * `keptUnits` of a later structuredPrune call.
 */
export function structuredGroups(input: ModelProto, protectedTensors: ReadonlySet<string>): { model: ModelProto; analysis: DependencyAnalysis; groups: DependencyGroup[] } {
  const model = untieConstants(input);
  const analysis = analyzeDependencies(model);
  const protect = new Map<number, SkipReason>();
  for (const u of analysis.uses) {
    if (!protectedTensors.has(u.tensor)) continue;
    for (const s of u.layout) protect.set(analysis.spaces.root(s.space), { kind: 'protected', tensor: u.tensor });
  }
  return { model, analysis, groups: analysis.groups.map((g) => ({ ...g, skip: g.skip ?? protect.get(g.root) })) };
}

function perBlock(scores: Float64Array, block: number): Float64Array {
  if (block === 1) return scores;
  const out = new Float64Array(scores.length / block);
  for (let i = 0; i < scores.length; i++) out[Math.floor(i / block)] += scores[i];
  return out;
}

function expandBlocks(mask: Uint8Array, block: number): Uint8Array {
  if (block === 1) return mask;
  const out = new Uint8Array(mask.length * block);
  for (let i = 0; i < out.length; i++) out[i] = mask[Math.floor(i / block)];
  return out;
}

async function groupImportance(model: ModelProto, analysis: DependencyAnalysis, opts: StructuredOptions, notes: string[]): Promise<Importance> {
  const l1 = magnitudeImportance(model, analysis, 1);
  switch (opts.criterion) {
    case 'l1':
      return l1;
    case 'l2':
      return magnitudeImportance(model, analysis, 2);
    case 'bn-scale': {
      const bn = bnScaleImportance(model, analysis);
      const fallback = analysis.groups.filter((g) => !g.skip && !bn.has(g.root));
      if (fallback.length > 0) notes.push(`criterion bn-scale: ${fallback.length} group(s) have no BatchNormalization and are ranked by L1 magnitude`);
      for (const [root, s] of l1) if (!bn.has(root)) bn.set(root, s);
      return bn;
    }
    case 'activation': {
      if (!opts.calib) throw new UserError('--criterion activation: needs calibration data; pass --calib data.npz (or use --criterion l1)');
      const tensors = new Map<string, number>();
      for (const u of analysis.uses) if (u.role === 'fanin' && u.activation !== undefined) tensors.set(u.activation, u.activationAxis!);
      const act = activationImportance(model, analysis, await channelMeanAbs(model, tensors, opts.calib));
      for (const [root, s] of l1) if (!act.has(root)) act.set(root, s);
      return act;
    }
  }
}
