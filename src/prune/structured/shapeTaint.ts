import type { NodeProto } from '../../onnx/proto/onnx_pb.js';
import type { GraphIndex } from '../../onnx/graph.js';
import { attrInt, attrInts } from '../../onnx/graph.js';

/**
 * Shape arithmetic that reads a channel count (torch's `chunk` of a fused projection computes its
 * Slice bounds from `Shape(x)[-1]`) stays right after pruning only where its result is replaced by a
 * constant the surgery writes. This follows such a value forward, element by element, through the
 * integer ops exporters use on shapes, and returns the first read that is neither replaced nor more
 * integer arithmetic: a place where the stale count would still be used.
 */
export interface TaintSink {
  node: NodeProto;
  input: number;
}

const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div', 'Mod', 'Max', 'Min', 'Neg', 'Abs', 'Floor', 'Ceil', 'Cast', 'Identity', 'Sqrt', 'Reciprocal']);

type Elements = ReadonlySet<number>;

/**
 * `seed`: a Shape output and the elements of it that depend on pruned channels. `replaced(node, input,
 * elements)` tells whether the surgery overwrites those elements of that input (or they stay right by
 * themselves). `ints(name)` gives a constant or
 * evaluated small int tensor. Returns undefined when every tainted value ends in a replaced input.
 */
export function firstUnreplacedRead(
  index: GraphIndex,
  seed: { tensor: string; elements: Elements },
  replaced: (node: NodeProto, input: number, elements: Elements) => boolean,
  ints: (name: string) => number[] | undefined,
  length: (name: string) => number | undefined,
): TaintSink | undefined {
  const taint = new Map<string, Elements>([[seed.tensor, seed.elements]]);
  const queue = [seed.tensor];
  while (queue.length > 0) {
    const t = queue.shift()!;
    const elements = taint.get(t)!;
    if (index.graphOutputs.has(t)) return { node: index.producer.get(t)!, input: -1 };
    for (const c of index.consumersOf(t)) {
      for (let i = 0; i < c.input.length; i++) {
        if (c.input[i] !== t || replaced(c, i, elements)) continue;
        const out = propagate(c, i, elements, ints, length);
        if (out === undefined) return { node: c, input: i };
        if (out.size === 0) continue;
        const o = c.output[0];
        const prior = taint.get(o);
        const merged = new Set([...(prior ?? []), ...out]);
        if (!prior || merged.size !== prior.size) {
          taint.set(o, merged);
          queue.push(o);
        }
      }
    }
  }
  return undefined;
}

/** Tainted elements of `node`'s output when input `i` carries `elements`; undefined: not followed. */
function propagate(node: NodeProto, i: number, elements: Elements, ints: (name: string) => number[] | undefined, length: (name: string) => number | undefined): Set<number> | undefined {
  const n = length(node.input[i]);
  const all = (len: number | undefined) => new Set(Array.from({ length: Math.max(1, len ?? 1) }, (_, k) => k));
  switch (node.opType) {
    case 'Gather': {
      if (i !== 0 || attrInt(node, 'axis', 0) !== 0 || n === undefined) return undefined;
      const idx = ints(node.input[1]);
      if (!idx) return undefined;
      return new Set(idx.flatMap((v, k) => (elements.has(v < 0 ? v + n : v) ? [k] : [])));
    }
    case 'Slice': {
      if (i !== 0 || n === undefined) return undefined;
      const starts = node.input[1] ? ints(node.input[1]) : attrInts(node, 'starts');
      const ends = node.input[2] ? ints(node.input[2]) : attrInts(node, 'ends');
      const steps = node.input[4] ? ints(node.input[4]) : undefined;
      if (!starts || !ends || starts.length !== 1 || (steps && steps[0] !== 1)) return undefined;
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
      const a = clamp(starts[0]);
      const b = clamp(ends[0]);
      return new Set([...elements].filter((e) => e >= a && e < b).map((e) => e - a));
    }
    case 'Concat': {
      let offset = 0;
      for (let k = 0; k < i; k++) {
        const len = length(node.input[k]);
        if (len === undefined) return undefined;
        offset += len;
      }
      return new Set([...elements].map((e) => e + offset));
    }
    case 'Unsqueeze':
    case 'Squeeze':
    case 'Reshape':
      return i === 0 ? new Set(elements) : undefined;
    default:
      if (!ELEMENTWISE.has(node.opType)) return undefined;
      // an operand broadcast over the other's elements taints all of them
      return length(node.output[0]) === n ? new Set(elements) : all(length(node.output[0]));
  }
}
