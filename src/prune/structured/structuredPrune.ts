import type { Dataset } from '../../data/dataset.js';
import { UserError } from '../../errors.js';
import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import { channelMeanAbs } from '../criteria/activations.js';
import { type Criterion, type Importance, activationImportance, bnScaleImportance, magnitudeImportance } from '../criteria/importance.js';
import { type ChannelTally, channelTally } from '../reduction.js';
import { allocate, keepMask } from './allocate.js';
import { type DependencyAnalysis, type DependencyGroup, analyzeDependencies } from './depgraph.js';
import { type KeptChannels, keptChannels } from './keptChannels.js';
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
  return { model: pruned, base: model, analysis, keep, groups: outcome, notes, kept: keptChannels(model, analysis, keep), tally: channelTally(outcome) };
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
