import type { NodeProto } from '../../onnx/proto/onnx_pb.js';
import { attrInt, attrInts, attrString, nodeLabel } from '../../onnx/graph.js';
import { type Einsum, parseEinsum } from '../../onnx/einsum.js';
import type { Context, DimRewrite, Tracked } from './context.js';
import { layoutsOf } from './context.js';
import { type Layout, layoutSize } from './layout.js';
import { type ChannelSplit, type Factor, dimRole, regroup } from './regroup.js';

/**
 * Multi-head attention as exporters write it: heads split off the channels by a Reshape (also out of a
 * fused QKV projection, and merged with the batch as torch's nn.MultiheadAttention does), moved by
 * Transpose/Unsqueeze/Squeeze, picked apart by Split/Gather/Slice, multiplied by MatMul or Einsum, and
 * merged back into channels by a Reshape. Heads are pruned whole: every tensor on the way is followed
 * exactly, or the groups reaching it are left unpruned with the reason.
 */

const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** The axes of a tracked tensor, renumbered by `f` (undefined: that axis is gone, which fails). */
function remap(t: Tracked, f: (axis: number) => number | undefined): Tracked | undefined {
  const axis = f(t.axis);
  const dAxis = t.dAxis === undefined ? undefined : f(t.dAxis);
  if (axis === undefined || (t.dAxis !== undefined && dAxis === undefined)) return undefined;
  let parts = t.parts;
  if (parts) {
    const p = f(parts.axis);
    if (p === undefined) {
      // a fused axis of one part can go: what remains is that part
      if (parts.layouts.length !== 1) return undefined;
      return { ...t, axis, dAxis, parts: undefined, layout: parts.layouts[0] };
    }
    parts = { ...parts, axis: p };
  }
  return { ...t, axis, dAxis, parts };
}

function withoutParts(t: Tracked, layout: Layout): Tracked {
  return { ...t, parts: undefined, layout };
}

/** Axes whose length changes when channels go (what a Shape read of them must not be used for). */
export function sizedAxes(t: Tracked): number[] {
  return [t.axis];
}

/** Shape of a tracked tensor: harmless unless a pruned length is read, then checked at the end. */
export function shapeRead(c: Context, node: NodeProto, t: Tracked): void {
  const rank = c.shape(node.input[0])?.length;
  if (rank === undefined) return c.unsupported(node, [t], 'has an unknown input shape');
  const clamp = (v: number) => Math.min(Math.max(norm(v, rank), 0), rank);
  const start = clamp(attrInt(node, 'start', 0));
  const end = clamp(attrInt(node, 'end', rank));
  const elements = sizedAxes(t).filter((a) => a >= start && a < end).map((a) => a - start);
  if (elements.length > 0) c.shapeReads.push({ tensor: node.output[0], elements: new Set(elements), layouts: layoutsOf(t), node });
}

// ---- fused projections ------------------------------------------------------------------------------

/**
 * How many equal parts a producer's output channels are cut into right away (a fused QKV projection:
 * GPT-2's Split, torch's chunk as three Slices, timm's and torch 2's Reshape to (…, 3, …) whose new axis
 * is then indexed). Each part becomes its own channel space, so Q, K and V can be paired head by head.
 */
export function fusedParts(c: Context, out: string, axis: number, size: number): number | undefined {
  let t = out;
  for (let hop = 0; hop < 4; hop++) {
    const readers = c.index.consumersOf(t);
    const p = partsCutBy(c, readers, t, axis, size);
    if (p) return p;
    // follow a bias Add, Identity or Cast, the only reader
    if (readers.length !== 1) return undefined;
    const r = readers[0];
    const other = r.input.find((i) => i !== t);
    if (r.opType === 'Add' && other && c.constant(other)) t = r.output[0];
    else if (r.opType === 'Identity' || r.opType === 'Cast') t = r.output[0];
    else return undefined;
  }
  return undefined;
}

function partsCutBy(c: Context, readers: NodeProto[], t: string, axis: number, size: number): number | undefined {
  const rank = c.shape(t)?.length;
  if (rank === undefined) return undefined;
  for (const r of readers) {
    if (r.opType === 'Split' && norm(attrInt(r, 'axis', 0), rank) === axis) {
      const sizes = (r.input[1] ? c.knownInts(r.input[1]) : attrInts(r, 'split')) ?? r.output.map((o) => c.shape(o)?.[axis] ?? -1);
      return equalParts(sizes, size);
    }
    if (r.opType === 'Reshape' && r.input[0] === t) {
      const outS = c.shape(r.output[0]);
      const inS = c.shape(t);
      if (!outS || !inS || outS.length <= inS.length || !inS.slice(0, axis).every((d, i) => outS[i] === d)) continue;
      const p = outS[axis];
      if (p >= 2 && p < size && size % p === 0 && selectsAlong(c, r.output[0], axis, 4)) return p;
    }
  }
  const slices = readers.filter((r) => r.opType === 'Slice' && r.input[0] === t);
  if (slices.length >= 2) {
    const bounds: [number, number][] = [];
    for (const s of slices) {
      const axes = s.input[3] ? c.knownInts(s.input[3]) : [...Array(rank).keys()];
      const starts = c.knownInts(s.input[1]);
      const ends = c.knownInts(s.input[2]);
      const k = axes?.map((a) => norm(a, rank)).indexOf(axis) ?? -1;
      if (!starts || !ends || k < 0) return undefined;
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + size : v, 0), size);
      bounds.push([clamp(starts[k]), clamp(ends[k])]);
    }
    const len = bounds[0][1] - bounds[0][0];
    if (len > 0 && size % len === 0 && bounds.every(([a, b]) => b - a === len && a % len === 0)) return size / len;
  }
  return undefined;
}

function equalParts(sizes: readonly number[], size: number): number | undefined {
  const ok = sizes.length >= 2 && sizes.every((s) => s === sizes[0]) && sizes[0] * sizes.length === size;
  return ok ? sizes.length : undefined;
}

/** Whether `axis` of `tensor` is indexed (Gather of one index, Split) after shape-only moves. */
function selectsAlong(c: Context, tensor: string, axis: number, depth: number): boolean {
  if (depth === 0) return false;
  const rank = c.shape(tensor)?.length;
  if (rank === undefined) return false;
  for (const r of c.index.consumersOf(tensor)) {
    if (r.input[0] !== tensor) continue;
    if (r.opType === 'Gather' && norm(attrInt(r, 'axis', 0), rank) === axis && c.shape(r.input[1])?.length === 0) return true;
    if (r.opType === 'Split' && norm(attrInt(r, 'axis', 0), rank) === axis) return true;
    const next = movedAxis(c, r, axis, rank);
    if (next !== undefined && selectsAlong(c, r.output[0], next, depth - 1)) return true;
  }
  return false;
}

/** Where `axis` goes through a Transpose, Unsqueeze or Squeeze; undefined for anything else. */
function movedAxis(c: Context, r: NodeProto, axis: number, rank: number): number | undefined {
  if (r.opType === 'Transpose') return (attrInts(r, 'perm') ?? [...Array(rank).keys()].reverse()).indexOf(axis);
  const axes = attrInts(r, 'axes') ?? c.knownInts(r.input[1]);
  if (!axes) return undefined;
  if (r.opType === 'Unsqueeze') {
    const sorted = axes.map((a) => norm(a, rank + axes.length)).sort((p, q) => p - q);
    let k = axis;
    for (const a of sorted) if (a <= k) k++;
    return k;
  }
  if (r.opType === 'Squeeze') {
    const removed = axes.map((a) => norm(a, rank));
    return removed.includes(axis) ? undefined : axis - removed.filter((a) => a < axis).length;
  }
  return undefined;
}

function isFused(c: Context, layout: Layout, parts: number): boolean {
  return layout.length === parts && layout.every((s) => c.fusedSpaces.has(s.space) && s.start === 0 && s.repeat === 1 && s.len === layout[0].len);
}

// ---- reshape ----------------------------------------------------------------------------------------

function factorsOf(t: Tracked, shape: readonly number[]): Factor[][] | undefined {
  if (t.layout.some((s) => s.repeat !== 1)) return undefined;
  const dims: Factor[][] = [];
  for (let i = 0; i < shape.length; i++) {
    if (i === t.axis && t.block) {
      const outer = t.outer ?? 1;
      const heads = layoutSize(t.layout) / t.block;
      if (outer * heads !== shape[i]) return undefined;
      dims.push([{ kind: 'opaque', n: outer }, { kind: 'heads', n: heads }]);
    } else if (i === t.axis) dims.push([{ kind: 'chan', n: shape[i] }]);
    else if (i === t.dAxis) dims.push([{ kind: 'width', n: shape[i] }]);
    else if (t.parts && i === t.parts.axis) dims.push([{ kind: 'part', n: shape[i] }]);
    else dims.push([{ kind: 'opaque', n: shape[i] }]);
  }
  return dims;
}

function headsAligned(layouts: readonly Layout[], d: number): boolean {
  return layouts.every((l) => l.every((s) => s.repeat === 1 && s.start % d === 0 && s.len % d === 0));
}

/**
 * A Reshape of a tracked tensor that cuts channels into heads (or fused parts), merges heads with the
 * batch, or merges heads back into channels: followed through its factors, with every target element
 * that spells a pruned count rewritten.
 */
export function regroupReshape(c: Context, node: NodeProto, t: Tracked): void {
  const fail = (why: string) => c.unsupported(node, [t], why);
  const inS = c.shape(node.input[0]);
  const outS = c.shape(node.output[0]);
  if (!inS || !outS) return fail('has an unknown shape');
  const inF = factorsOf(t, inS);
  if (!inF) return fail('regroups channels repeated over a flattened block');
  let newParts: Layout[] | undefined;
  const split: ChannelSplit = (n, pieces) => {
    let rest = pieces;
    const out: Factor[] = [];
    let layouts = t.parts?.layouts ?? [t.layout];
    if (!t.parts && pieces.length >= 2 && isFused(c, t.layout, pieces[0])) {
      newParts = t.layout.map((s) => [s]);
      layouts = newParts;
      out.push({ kind: 'part', n: pieces[0] });
      rest = pieces.slice(1);
    }
    const perPart = n / (out.length ? pieces[0] : 1);
    if (rest.length === 1) return [...out, { kind: 'chan', n: perPart }];
    if (rest.length === 2 && headsAligned(layouts, rest[1])) return [...out, { kind: 'heads', n: rest[0] }, { kind: 'width', n: rest[1] }];
    return rest.length === 2 ? 'splits channels into heads across channel blocks' : 'splits or merges the channel axis (e.g. a channel shuffle)';
  };
  const outF = regroup(inF, outS, split);
  if (typeof outF === 'string') return fail(outF);
  const roles = outF.map(dimRole);
  const find = (role: string) => roles.flatMap((r, i) => (r.role === role ? [i] : []));
  const [heads, width, part, chans, mixed] = ['heads', 'width', 'part', 'channels', 'mixed'].map(find);
  if (mixed.length || heads.length > 1 || width.length > 1 || part.length > 1 || chans.length > 1 || heads.length + chans.length !== 1 || (heads.length === 1) !== (width.length === 1)) {
    // channels cut into blocks whose order is then swapped with the channels inside them: a shuffle
    const shuffled = outF.some((f) => f.findIndex((x) => x.kind === 'width') >= 0 && f.findIndex((x) => x.kind === 'width') < f.findIndex((x) => x.kind === 'heads'));
    if (shuffled || !(t.block || t.parts)) return fail('splits or merges the channel axis with other dimensions (e.g. a channel shuffle)');
    return fail('regroups heads or channels with other dimensions');
  }
  const layouts = newParts ?? t.parts?.layouts ?? [t.layout];
  if (newParts) for (let i = 1; i < newParts.length; i++) if (!c.unify(newParts[0], newParts[i], node, 'the parts of a fused projection')) return;
  const first = layouts[0];
  const all: Layout = layouts.flat();
  let result: Tracked;
  const rewrites: Omit<DimRewrite, 'node' | 'target' | 'element'>[] = outS.map(() => ({ layout: first }));
  const needs = new Set<number>();
  if (heads.length === 1) {
    const h = heads[0];
    const block = outF[width[0]].find((f) => f.kind === 'width')!.n;
    for (const l of layouts) for (const s of l) c.spaces.setBlock(s.space, block);
    const outer = (roles[h] as { outer: number }).outer;
    result = { axis: h, layout: first, block, dAxis: width[0], ...(outer > 1 ? { outer } : {}), ...(part.length && layouts.length > 1 ? { parts: { axis: part[0], layouts } } : {}) };
    rewrites[h] = { layout: first, divisor: block, ...(outer > 1 ? { multiplier: outer } : {}) };
    needs.add(h);
  } else {
    const k = chans[0];
    const merged = (roles[k] as { parts: boolean }).parts;
    if (merged || layouts.length === 1) result = { axis: k, layout: merged ? all : first };
    else if (part.length === 1) result = { axis: k, layout: first, parts: { axis: part[0], layouts } };
    else return fail('drops the fused projection axis');
    rewrites[k] = { layout: merged ? all : first };
    needs.add(k);
  }
  if (!writeTarget(c, node, inF, outF, rewrites, needs, fail)) return;
  c.set(node.output[0], result);
}

/** Rewrites of the target elements in `needs`; false (after `fail`) when one cannot be written. */
function writeTarget(
  c: Context,
  node: NodeProto,
  inF: Factor[][],
  outF: Factor[][],
  rewrites: Omit<DimRewrite, 'node' | 'target' | 'element'>[],
  needs: Set<number>,
  fail: (why: string) => void,
): boolean {
  const target = c.knownInts(node.input[1]);
  let inferred = target?.includes(-1) ?? true;
  for (const k of needs) {
    if (c.copiesOwnLength(node, k, (axis) => JSON.stringify(inF[axis]) === JSON.stringify(outF[k]))) continue;
    const slot = c.targetSlot(node, k);
    if (!slot) return (fail('has a computed target shape the analysis cannot rewrite'), false);
    if (slot.value === -1) continue;
    if (slot.value === 0) {
      if (JSON.stringify(inF[k]) === JSON.stringify(outF[k])) continue;
      return (fail('copies a dimension by position'), false);
    }
    if (slot.dynamic) {
      // the count is built from the batch size: a -1 lets the Reshape infer it, once per target
      const single = slot.rewrite.computed && slot.rewrite.computed.values.length === 1;
      if (inferred || !single) return (fail('computes a head count from the batch size next to another inferred dimension'), false);
      inferred = true;
      c.rewrites.push({ ...slot.rewrite, layout: rewrites[k].layout, fixed: -1 });
      continue;
    }
    c.rewrites.push({ ...slot.rewrite, ...rewrites[k] });
  }
  return true;
}

// ---- ops inside attention ------------------------------------------------------------------------------

const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div', 'Where', 'Pow', 'Max', 'Min']);

/** Ops on tensors whose tracked axis counts heads, or that carry a fused projection's parts axis. */
export function attentionOp(c: Context, node: NodeProto, ins: (Tracked | undefined)[]): void {
  const op = node.opType;
  const x = ins[0];
  const out = node.output[0];
  const fail = (why: string) => c.unsupported(node, ins, why);
  const rank = c.shape(node.input[0])?.length;
  if (op === 'Cast' || op === 'Identity' || op === 'Dropout') return x ? c.set(out, x) : fail('takes heads in a parameter input');
  if (op === 'Shape') return x ? shapeRead(c, node, x) : undefined;
  if (op === 'Einsum') return einsumHeads(c, node, ins);
  if (op === 'MatMul') return matmulHeads(c, node, ins);
  if (ELEMENTWISE.has(op)) return elementwiseHeads(c, node, ins);
  if (!x || rank === undefined || ins.slice(1).some((t) => t)) return fail('is not understood inside attention heads');
  if (op === 'Reshape') return regroupReshape(c, node, x);
  if (op === 'Transpose') {
    const perm = attrInts(node, 'perm') ?? [...Array(rank).keys()].reverse();
    const r = remap(x, (a) => perm.indexOf(a));
    return r ? c.set(out, r) : fail('has an unknown permutation');
  }
  if (op === 'Unsqueeze' || op === 'Squeeze') {
    const axes = attrInts(node, 'axes') ?? c.knownInts(node.input[1]) ?? (op === 'Squeeze' ? c.shape(node.input[0])!.flatMap((d, i) => (d === 1 ? [i] : [])) : undefined);
    if (!axes) return fail('has axes that are not constant');
    const r = remap(x, (a) => movedAxisBy(op, axes, a, rank));
    return r ? c.set(out, r) : fail('squeezes a head axis');
  }
  if (op === 'Softmax' || op === 'LogSoftmax') {
    const axis = norm(attrInt(node, 'axis', -1), rank);
    if (axis === x.axis || axis === x.dAxis || axis === x.parts?.axis) return fail('normalises over heads or head channels');
    return c.set(out, x);
  }
  if (op === 'Gather') {
    const axis = norm(attrInt(node, 'axis', 0), rank);
    const idx = c.knownInts(node.input[1]);
    const idxRank = c.shape(node.input[1])?.length;
    if (x.parts && axis === x.parts.axis && idx?.length === 1 && idxRank === 0) {
      const picked = withoutParts(x, x.parts.layouts[norm(idx[0], x.parts.layouts.length)]);
      const r = remap(picked, (a) => (a < axis ? a : a - 1));
      return r ? c.set(out, r) : fail('picks a fused part in a way the analysis does not follow');
    }
    if (axis === x.axis || axis === x.dAxis || axis === x.parts?.axis || idxRank === undefined) return fail('gathers along a head axis');
    const r = remap(x, (a) => (a < axis ? a : a - 1 + idxRank));
    return r ? c.set(out, r) : fail('gathers along a head axis');
  }
  if (op === 'Split') {
    const axis = norm(attrInt(node, 'axis', 0), rank);
    if (x.parts && axis === x.parts.axis) {
      const sizes = (node.input[1] ? c.knownInts(node.input[1]) : attrInts(node, 'split')) ?? node.output.map((o) => c.shape(o)?.[axis] ?? -1);
      if (sizes.some((s) => s !== 1) || sizes.length !== x.parts.layouts.length) return fail('splits a fused projection into uneven parts');
      node.output.forEach((o, i) => c.set(o, { ...x, layout: x.parts!.layouts[i], parts: { axis, layouts: [x.parts!.layouts[i]] } }));
      return;
    }
    if (axis === x.axis || axis === x.dAxis) return fail('splits a head axis');
    for (const o of node.output) c.set(o, x);
    return;
  }
  if (op === 'Slice') {
    const starts = c.knownInts(node.input[1]);
    const ends = c.knownInts(node.input[2]);
    const axes = (node.input[3] ? c.knownInts(node.input[3]) : starts?.map((_, i) => i))?.map((a) => norm(a, rank));
    const steps = node.input[4] ? c.knownInts(node.input[4]) : undefined;
    if (!starts || !ends || !axes || steps?.some((s) => s !== 1)) return fail('has bounds that are not constant');
    const inS = c.shape(node.input[0])!;
    let r: Tracked = x;
    for (let k = 0; k < axes.length; k++) {
      const a = axes[k];
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + inS[a] : v, 0), inS[a]);
      const [lo, hi] = [clamp(starts[k]), clamp(ends[k])];
      if (lo === 0 && hi === inS[a]) continue;
      if (x.parts && a === x.parts.axis && hi === lo + 1) r = { ...r, layout: x.parts.layouts[lo], parts: { axis: a, layouts: [x.parts.layouts[lo]] } };
      else if (a === x.axis || a === x.dAxis || a === x.parts?.axis) return fail('slices a head axis');
    }
    return c.set(out, r);
  }
  fail('is not understood inside attention heads');
}

function movedAxisBy(op: string, axes: readonly number[], axis: number, rank: number): number | undefined {
  if (op === 'Unsqueeze') {
    const sorted = axes.map((a) => norm(a, rank + axes.length)).sort((p, q) => p - q);
    let k = axis;
    for (const a of sorted) if (a <= k) k++;
    return k;
  }
  const removed = axes.map((a) => norm(a, rank));
  return removed.includes(axis) ? undefined : axis - removed.filter((a) => a < axis).length;
}

/** Scaling by 1/sqrt(d), a mask or a bias: whatever does not vary over heads (or fused parts) passes. */
function elementwiseHeads(c: Context, node: NodeProto, ins: (Tracked | undefined)[]): void {
  const fail = (why: string) => c.unsupported(node, ins, why);
  const rank = c.shape(node.output[0])?.length;
  if (rank === undefined) return fail('has an unknown output shape');
  let result: Tracked | undefined;
  for (let i = 0; i < ins.length; i++) {
    const t = ins[i];
    const r = c.shape(node.input[i])?.length;
    if (!t) continue;
    if (r !== rank) return fail('combines heads with a tensor of another rank');
    if (!result) result = t;
    else if (t.axis !== result.axis || t.dAxis !== result.dAxis || t.outer !== result.outer || t.block !== result.block || t.parts?.axis !== result.parts?.axis) return fail('combines heads laid out differently');
    else for (const [a, b] of layoutsOf(result).map((l, k) => [l, layoutsOf(t)[k]] as const)) if (!b || !c.unify(a, b, node, 'the operands')) return;
  }
  if (!result) return;
  for (let i = 0; i < ins.length; i++) {
    if (ins[i] || !node.input[i]) continue;
    const s = c.shape(node.input[i]);
    if (!s) return fail('combines heads with a tensor of unknown shape');
    const at = (axis: number | undefined) => (axis === undefined ? 1 : (s[axis - (rank - s.length)] ?? 1));
    if (at(result.axis) !== 1 || at(result.parts?.axis) !== 1) return fail('combines heads with a tensor that varies over heads');
  }
  c.set(node.output[0], result);
}

/** Q × Kᵀ contracts the head width; scores × V keeps V's. Both operands carry the same heads. */
function matmulHeads(c: Context, node: NodeProto, ins: (Tracked | undefined)[]): void {
  const fail = (why: string) => c.unsupported(node, ins, why);
  const [a, b] = ins;
  const ra = c.shape(node.input[0])?.length;
  const rb = c.shape(node.input[1])?.length;
  if (!a || !b || ra === undefined || rb === undefined || ra !== rb || a.axis !== b.axis || a.axis >= ra - 2 || a.outer !== b.outer || a.parts || b.parts) {
    return fail('mixes heads in a way the analysis does not follow');
  }
  const outer = a.outer ? { outer: a.outer } : {};
  if (a.dAxis === ra - 1 && b.dAxis === rb - 2) {
    if (!c.unify(a.layout, b.layout, node, 'Q x K')) return;
    return c.set(node.output[0], { axis: a.axis, layout: a.layout, block: a.block, ...outer });
  }
  if (a.dAxis === undefined && b.dAxis === rb - 1) {
    if (!c.unify(a.layout, b.layout, node, 'scores x V')) return;
    return c.set(node.output[0], { axis: a.axis, layout: b.layout, block: b.block, dAxis: ra - 1, ...outer });
  }
  fail('mixes heads in a way the analysis does not follow');
}

function parseNodeEinsum(c: Context, node: NodeProto): Einsum | undefined {
  const ranks = node.input.map((i) => c.shape(i)?.length);
  if (ranks.some((r) => r === undefined)) return undefined;
  try {
    return parseEinsum(attrString(node, 'equation', ''), ranks as number[]);
  } catch {
    return undefined;
  }
}

/**
 * Einsum over heads: every operand carrying the head label must carry the same heads, the head label
 * must survive into the output, and a contracted head width must be the head width of every operand.
 */
function einsumHeads(c: Context, node: NodeProto, ins: (Tracked | undefined)[]): void {
  const fail = (why: string) => c.unsupported(node, ins, why);
  const e = parseNodeEinsum(c, node);
  if (!e) return fail('has an equation that does not fit its operands');
  const tracked = ins.flatMap((t, k) => (t ? [{ t, k }] : []));
  const first = tracked[0].t;
  if (tracked.some(({ t }) => !t.block || t.parts || t.outer !== first.outer || t.block !== first.block)) return fail('mixes heads with other channels');
  const h = e.inputs[tracked[0].k][first.axis];
  if (tracked.some(({ t, k }) => e.inputs[k][t.axis] !== h)) return fail('pairs different head axes');
  for (let k = 0; k < ins.length; k++) {
    const a = e.inputs[k].indexOf(h);
    if (!ins[k] && a >= 0 && c.shape(node.input[k])![a] !== 1) return fail('combines heads with a tensor that varies over heads');
  }
  const outAxis = e.output.indexOf(h);
  if (outAxis < 0) return fail('sums over heads');
  const widths = new Set(tracked.filter(({ t }) => t.dAxis !== undefined).map(({ t, k }) => e.inputs[k][t.dAxis!]));
  let dAxis: number | undefined;
  let layout = first.layout;
  for (const d of widths) {
    if (d === h) return fail('pairs a head axis with a head width');
    if (e.output.includes(d)) {
      if (dAxis !== undefined) return fail('keeps two head widths');
      dAxis = e.output.indexOf(d);
      layout = tracked.find(({ t, k }) => t.dAxis !== undefined && e.inputs[k][t.dAxis] === d)!.t.layout;
    } else {
      // a contracted head width (Q · K) must be the head width of every operand that has the label
      for (let k = 0; k < ins.length; k++) {
        const a = e.inputs[k].indexOf(d);
        if (a >= 0 && ins[k]?.dAxis !== a) return fail('contracts a head width with a tensor that is not split into the same heads');
      }
    }
  }
  for (const { t } of tracked.slice(1)) if (!c.unify(first.layout, t.layout, node, 'Einsum operands')) return;
  c.set(node.output[0], { axis: outAxis, layout, block: first.block, ...(dAxis !== undefined ? { dAxis } : {}), ...(first.outer ? { outer: first.outer } : {}) });
}

/**
 * Einsum outside attention: a linear layer written as an Einsum with a 2-D weight (its contracted label
 * is the fan-in, its output label a new channel space), or channels passing through a product of
 * activations on a label that survives.
 */
export function einsumChannels(c: Context, node: NodeProto, ins: (Tracked | undefined)[]): void {
  const fail = (why: string) => c.unsupported(node, ins, why);
  const e = parseNodeEinsum(c, node);
  if (!e) return fail('has an equation that does not fit its operands');
  const w = ins.length === 2 ? [0, 1].find((k) => c.constant(node.input[k]) && e.inputs[k].length === 2) : undefined;
  if (w !== undefined && !ins[w]) {
    const xk = 1 - w;
    const wl = e.inputs[w];
    const j = wl.find((l) => e.inputs[xk].includes(l) && !e.output.includes(l));
    const o = wl.find((l) => !e.inputs[xk].includes(l) && e.output.includes(l));
    if (j !== undefined && o !== undefined) {
      const x = ins[xk];
      if (x) {
        if (e.inputs[xk][x.axis] !== j) return fail('reads channels on an axis it does not contract');
        c.use(node, node.input[w], wl.indexOf(j), x.layout, 'fanin', { ...x, name: node.input[xk] });
      }
      const size = c.shape(node.input[w])![wl.indexOf(o)];
      const layout = c.fresh(node, size);
      c.use(node, node.input[w], wl.indexOf(o), layout, 'param');
      return c.set(node.output[0], { axis: e.output.indexOf(o), layout });
    }
  }
  const tracked = ins.flatMap((t, k) => (t ? [{ t, k }] : []));
  if (tracked.length === 0) return;
  const label = e.inputs[tracked[0].k][tracked[0].t.axis];
  if (tracked.some(({ t, k }) => e.inputs[k][t.axis] !== label)) return fail('combines channels on different labels');
  if (!e.output.includes(label)) return fail('sums over the channel axis of an activation');
  for (let k = 0; k < ins.length; k++) {
    const a = e.inputs[k].indexOf(label);
    if (!ins[k] && a >= 0 && c.shape(node.input[k])![a] !== 1) return fail('multiplies the channels by a tensor the analysis cannot slice');
  }
  for (const { t } of tracked.slice(1)) if (!c.unify(tracked[0].t.layout, t.layout, node, 'Einsum operands')) return;
  c.set(node.output[0], { axis: e.output.indexOf(label), layout: tracked[0].t.layout });
}
