import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import { analyzeDependencies } from './depgraph.js';
import { untieConstants } from './untie.js';

export interface ChannelCount {
  /** channels in every group structured pruning may cut (not skipped, not protected), whatever their size */
  remaining: number;
  /** of those, the channels in groups that still have more than one (what the allocator can remove from) */
  removable: number;
}

/**
 * Channels a structured pass could prune in `model`, counted from the same dependency analysis the pass
 * runs, so a gradual schedule can state its cumulative ratio against the dense model's channels.
 */
export function countChannels(model: ModelProto, protectedTensors: ReadonlySet<string>): ChannelCount {
  const analysis = analyzeDependencies(untieConstants(model));
  const guarded = new Set<number>();
  for (const u of analysis.uses) {
    if (!protectedTensors.has(u.tensor)) continue;
    for (const s of u.layout) guarded.add(analysis.spaces.root(s.space));
  }
  let remaining = 0;
  let removable = 0;
  for (const g of analysis.groups) {
    if (g.skip || guarded.has(g.root)) continue;
    remaining += g.size;
    if (g.size > 1) removable += g.size;
  }
  return { remaining, removable };
}
