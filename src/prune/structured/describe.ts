import { modelCost } from '../../onnx/flops.js';
import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import type { StructuredResult } from './structuredPrune.js';

const pct = (x: number) => (Number.isNaN(x) ? 'n/a (shapes unknown)' : `${(x * 100).toFixed(1)}%`);

/** Channel, parameter and MAC reductions of a structured result, measured on both models' graphs. */
export function structuredSummary(dense: ModelProto, r: StructuredResult) {
  const prunable = r.groups.filter((g) => !g.skip && g.size > 1);
  const channels = prunable.reduce((n, g) => n + g.size, 0);
  const removed = prunable.reduce((n, g) => n + g.size - g.kept, 0);
  const a = modelCost(dense);
  const b = modelCost(r.model);
  return {
    groupsFound: r.groups.length,
    groupsPruned: prunable.filter((g) => g.kept < g.size).length,
    groupsSkipped: r.groups.filter((g) => g.skip).length,
    channels,
    channelsRemoved: removed,
    paramsRemoved: a.params ? 1 - b.params / a.params : 0,
    // a node whose shapes are unknown in one model only would fake a reduction: then say nothing
    macsRemoved: b.uncounted.length > a.uncounted.length ? Number.NaN : a.macs ? 1 - b.macs / a.macs : 0,
  };
}

export function describeStructured(dense: ModelProto, r: StructuredResult, o: { criterion: string; scope: string; sparsity: number }): string {
  const s = structuredSummary(dense, r);
  return (
    `structured channel pruning (${o.criterion}, ${o.scope}) at ${pct(o.sparsity)} of channels: removed ${s.channelsRemoved} of ${s.channels} prunable channels ` +
    `in ${s.groupsPruned} of ${s.groupsFound} dependency groups (${s.groupsSkipped} skipped, see notes); ` +
    `parameters -${pct(s.paramsRemoved)}, MACs -${pct(s.macsRemoved)}`
  );
}
