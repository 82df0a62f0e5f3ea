/**
 * Channel layouts: which prunable channels sit along one axis of a tensor, and in what order.
 *
 * A "space" is a set of channels born at one producer (a Conv's output channels, a Gemm's hidden units).
 * Spaces that must be pruned together (a residual Add joins two of them) are merged with union-find; a
 * merged set of spaces is a dependency group. A layout lists segments of spaces along an axis: a Concat
 * output is two segments, a Flatten after a conv repeats every channel H*W times, a Split or Slice takes
 * a sub-range of a space.
 */
import type { SkipReason } from './skip.js';

export interface Segment {
  space: number;
  /** first channel of the space in this segment */
  start: number;
  len: number;
  /** contiguous elements per channel along the axis (H*W after a Flatten) */
  repeat: number;
}
export type Layout = Segment[];

interface SpaceRecord {
  parent: number;
  size: number;
  /** the producer that created it, for group names */
  origin: string;
  /** why it cannot be pruned; the first reason found is kept */
  skip?: SkipReason;
  /** channels are pruned in blocks of this many (an attention head's width) */
  block: number;
}

export class Spaces {
  private readonly list: SpaceRecord[] = [];

  create(size: number, origin: string, skip?: SkipReason): number {
    this.list.push({ parent: this.list.length, size, origin, skip, block: 1 });
    return this.list.length - 1;
  }

  root(s: number): number {
    let r = s;
    while (this.list[r].parent !== r) r = this.list[r].parent;
    while (this.list[s].parent !== r) {
      const next = this.list[s].parent;
      this.list[s].parent = r;
      s = next;
    }
    return r;
  }

  size(s: number): number {
    return this.list[this.root(s)].size;
  }

  origin(s: number): string {
    return this.list[s].origin;
  }

  skipReason(s: number): SkipReason | undefined {
    return this.list[this.root(s)].skip;
  }

  block(s: number): number {
    return this.list[this.root(s)].block;
  }

  /** Channels of `s` go in whole blocks of `n` (one attention head); a conflicting block size is refused. */
  setBlock(s: number, n: number): void {
    const r = this.list[this.root(s)];
    if (r.block === 1 || r.block === n) r.block = n;
    else this.poison(s, headConflict(r.origin, r.block, n));
  }

  poison(s: number, reason: SkipReason): void {
    const r = this.list[this.root(s)];
    if (!r.skip) r.skip = reason;
  }

  /** Merge two spaces of equal size; their channels are pruned as one. */
  union(a: number, b: number): void {
    const ra = this.root(a);
    const rb = this.root(b);
    if (ra === rb) return;
    const A = this.list[ra];
    const B = this.list[rb];
    B.parent = ra;
    if (!A.skip && B.skip) A.skip = B.skip;
    if (A.block !== B.block) {
      if (A.block === 1) A.block = B.block;
      else if (B.block !== 1 && !A.skip) A.skip = headConflict(A.origin, A.block, B.block);
    }
  }

  get count(): number {
    return this.list.length;
  }

  roots(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.list.length; i++) if (this.root(i) === i) out.push(i);
    return out;
  }

  /** every space (not only roots) merged into root `r` */
  members(r: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.list.length; i++) if (this.root(i) === r) out.push(i);
    return out;
  }
}

function headConflict(origin: string, a: number, b: number): SkipReason {
  return { kind: 'unsupported', node: origin, op: 'Reshape', detail: `channels are split into heads of ${a} and of ${b} channels` };
}

export function layoutSize(layout: Layout): number {
  let n = 0;
  for (const s of layout) n += s.len * s.repeat;
  return n;
}

export function fullLayout(space: number, size: number, repeat = 1): Layout {
  return [{ space, start: 0, len: size, repeat }];
}

export function withRepeat(layout: Layout, factor: number): Layout {
  return layout.map((s) => ({ ...s, repeat: s.repeat * factor }));
}

/** Elements [from, to) of the axis, as a layout; undefined when a bound cuts a repeated channel block. */
export function subLayout(layout: Layout, from: number, to: number): Layout | undefined {
  const out: Layout = [];
  let pos = 0;
  for (const s of layout) {
    const width = s.len * s.repeat;
    const a = Math.max(from, pos);
    const b = Math.min(to, pos + width);
    if (a < b) {
      if ((a - pos) % s.repeat !== 0 || (b - pos) % s.repeat !== 0) return undefined;
      out.push({ space: s.space, start: s.start + (a - pos) / s.repeat, len: (b - a) / s.repeat, repeat: s.repeat });
    }
    pos += width;
  }
  return out;
}

/** keep[root] = 1 per kept channel; spaces without an entry keep everything */
export type KeepMap = ReadonlyMap<number, Uint8Array>;

/** Indices along the axis that survive, in order. */
export function keptIndices(layout: Layout, spaces: Spaces, keep: KeepMap): number[] {
  const out: number[] = [];
  let pos = 0;
  for (const s of layout) {
    const k = keep.get(spaces.root(s.space));
    for (let c = 0; c < s.len; c++) {
      if (!k || k[s.start + c]) for (let r = 0; r < s.repeat; r++) out.push(pos + c * s.repeat + r);
    }
    pos += s.len * s.repeat;
  }
  return out;
}

export function keptSize(layout: Layout, spaces: Spaces, keep: KeepMap): number {
  let n = 0;
  for (const s of layout) {
    const k = keep.get(spaces.root(s.space));
    if (!k) n += s.len * s.repeat;
    else for (let c = 0; c < s.len; c++) if (k[s.start + c]) n += s.repeat;
  }
  return n;
}
