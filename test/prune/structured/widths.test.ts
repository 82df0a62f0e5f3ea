import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../../src/config/schema.js';
import { loadModel } from '../../../src/onnx/model.js';
import type { ModelProto } from '../../../src/onnx/proto/onnx_pb.js';
import { pruneModel } from '../../../src/prune/pruneModel.js';
import { structuredGroups } from '../../../src/prune/structured/structuredPrune.js';
import { groupMultiples, type KindProbe } from '../../../src/prune/structured/hardware.js';
import type { MacLayer } from '../../../src/prune/structured/macLayers.js';
import { allowedWidths, chooseMultiple, snapToWidths, type WidthCurve } from '../../../src/prune/structured/widths.js';
import { realWorldDir } from '../../support/fixtures.js';

const COUNTS = Array.from({ length: 33 }, (_, i) => 40 + i);
const curve = (f: (c: number) => number): WidthCurve => ({ counts: COUNTS, ms: COUNTS.map(f) });

describe('chooseMultiple reads the multiple that pays from a measured curve', () => {
  it('a kernel that works in blocks of 16 output channels: 16', () => {
    // 0.2 ms overhead plus 0.1 ms per started block of 16
    expect(chooseMultiple(curve((c) => 0.2 + 0.1 * Math.ceil(c / 16))).multiple).toBe(16);
  });

  it('a proportional cost with slow widths off multiples of 4: 4, not the coarser multiples that score the same', () => {
    expect(chooseMultiple(curve((c) => 0.01 * c * (c % 4 === 0 ? 1 : 1.3))).multiple).toBe(4);
  });

  it('a cost proportional to the count (a fixed overhead included): 1, rounding buys nothing', () => {
    expect(chooseMultiple(curve((c) => 0.5 + 0.01 * c)).multiple).toBe(1);
  });

  it('records every candidate score relative to the best', () => {
    const choice = chooseMultiple(curve((c) => 0.2 + 0.1 * Math.ceil(c / 8)));
    expect(choice.multiple).toBe(8);
    expect(Math.max(...choice.scores.map((s) => s.score))).toBe(1);
    expect(choice.scores.map((s) => s.multiple)).toEqual([1, 2, 4, 8, 16]);
  });
});

describe('snapToWidths keeps counts on the measured widths and the total near the allocation', () => {
  const scores = (n: number, seed: number) => Float64Array.from({ length: n }, (_, i) => ((i * 37 + seed) % n) + 1);

  it('every kept count is a multiple of its group width or the whole group', () => {
    const kept = snapToWidths([
      { root: 1, size: 64, multiple: 16, kept: 27, scores: scores(64, 1) },
      { root: 2, size: 40, multiple: 16, kept: 21, scores: scores(40, 2) },
      { root: 3, size: 10, multiple: 16, kept: 5, scores: scores(10, 3) },
    ]);
    expect(kept.get(1)! % 16).toBe(0);
    expect([16, 32, 40]).toContain(kept.get(2));
    expect([4, 8, 10]).toContain(kept.get(3));
  });

  it('moves whole steps between groups until the removed total is as close as the widths allow', () => {
    // asked: remove 3 x 24 = 72 of 192; nearest widths alone would remove 3 x 32 = 96
    const groups = [1, 2, 3].map((root) => ({ root, size: 64, multiple: 16, kept: 40, scores: scores(64, root) }));
    const kept = snapToWidths(groups);
    const removed = [...kept.values()].reduce((n, k) => n + 64 - k, 0);
    expect(Math.abs(removed - 72)).toBeLessThanOrEqual(8);
    for (const k of kept.values()) expect(k % 16).toBe(0);
  });

  it('steps down the group whose least important units matter least', () => {
    const low = new Float64Array(32).fill(1);
    const high = new Float64Array(32).fill(1);
    for (let i = 0; i < 16; i++) high[i] = 5; // group 2's weakest half is still important
    for (let i = 0; i < 16; i++) low[i] = 0.1;
    // together they should lose 16 of 64: one of them goes to 16
    const kept = snapToWidths([
      { root: 1, size: 32, multiple: 16, kept: 24, scores: low },
      { root: 2, size: 32, multiple: 16, kept: 24, scores: high },
    ]);
    expect(kept.get(1)).toBe(16);
    expect(kept.get(2)).toBe(32);
  });

  it('never takes a group below its minKept, even when the total asks for it', () => {
    // group 2 snaps up from 42 to 48, so 6 units are still to remove, and group 1's units are the least
    // important: uncapped it gives a block of 8; at its cap (16 of 32) it keeps them
    const weak = new Float64Array(32).fill(0.01);
    const groups = [
      { root: 1, size: 32, multiple: 8, kept: 16, scores: weak, minKept: 16 },
      { root: 2, size: 64, multiple: 16, kept: 42, scores: scores(64, 2) },
    ];
    expect(snapToWidths(groups.map(({ minKept: _, ...g }) => g)).get(1)).toBe(8);
    expect([...snapToWidths(groups)]).toEqual([[1, 16], [2, 48]]);
  });

  it('correcting the total never walks a group down the halvings below the width under its asked count', () => {
    // the allocation asked 12 of 32 (widths 1, 2, 4, 8, 16, 32): 12 snaps to 16 and the gap of 4 could be
    // filled by 16 -> 8 -> 4 ...; the group stops at 8, the width under 12
    const groups = [
      { root: 1, size: 32, multiple: 16, kept: 12, scores: new Float64Array(32).fill(0.01) },
      { root: 2, size: 64, multiple: 16, kept: 26, scores: scores(64, 2) },
      { root: 3, size: 128, multiple: 16, kept: 74, scores: scores(128, 3) },
    ];
    const kept = snapToWidths(groups);
    expect(kept.get(1)).toBeGreaterThanOrEqual(8);
    // a group asked for a count inside the halvings may still be rounded to the halving under it
    expect(snapToWidths([{ root: 1, size: 16, multiple: 16, kept: 5, scores: scores(16, 1) }]).get(1)).toBe(4);
  });

  it('is deterministic: the same input gives the same counts', () => {
    const groups = [1, 2, 3, 4].map((root) => ({ root, size: 48, multiple: 8, kept: 20 + root, scores: scores(48, root) }));
    expect([...snapToWidths(groups)]).toEqual([...snapToWidths(groups)]);
  });

  it('allowedWidths lists the halvings of the multiple, its multiples below the size and the size', () => {
    expect(allowedWidths(40, 16)).toEqual([1, 2, 4, 8, 16, 32, 40]);
    expect(allowedWidths(8, 16)).toEqual([1, 2, 4, 8]);
    expect(allowedWidths(24, 1)).toHaveLength(24);
  });

  it('in whole blocks only, a group keeps multiples of its multiple or its size, and a group within one block stays whole', () => {
    expect(allowedWidths(40, 16, false)).toEqual([16, 32, 40]);
    expect(allowedWidths(16, 16, false)).toEqual([16]);
    expect(allowedWidths(8, 16, false)).toEqual([8]);
  });

  it('snapping in whole blocks moves the cut to groups that have whole blocks to give', () => {
    const scores = (n: number) => Float64Array.from({ length: n }, (_, i) => i + 1);
    const groups = [
      { root: 1, size: 16, multiple: 16, kept: 4, scores: scores(16) },
      { root: 2, size: 64, multiple: 16, kept: 48, scores: scores(64) },
    ];
    expect([...snapToWidths(groups)]).toEqual([[1, 4], [2, 48]]);
    // 28 channels asked for: the 16-wide group cannot give 12, so the wide one gives a second block
    expect([...snapToWidths(groups, false)]).toEqual([[1, 16], [2, 32]]);
  });

  it('with a predicted loss per group, the steps go where it predicts least, not where the importance is lowest', () => {
    // whole blocks keep the 16-wide group whole, so 16 channels must come from one of the two 32-wide ones.
    // Group 2's weights are the smallest, but its curve says losing half of it costs far more than group 3
    const weak = new Float64Array(32).fill(0.1);
    const strong = new Float64Array(32).fill(5);
    const linear = (size: number, perChannel: number) => (kept: number) => perChannel * (size - kept);
    const groups = [
      { root: 1, size: 16, multiple: 16, kept: 8, scores: strong.subarray(0, 16), lossAt: linear(16, 5) },
      { root: 2, size: 32, multiple: 16, kept: 28, scores: weak, lossAt: linear(32, 1) },
      { root: 3, size: 32, multiple: 16, kept: 28, scores: strong, lossAt: linear(32, 0.01) },
    ];
    expect([...snapToWidths(groups.map(({ lossAt: _, ...g }) => g), false)]).toEqual([[1, 16], [2, 16], [3, 32]]);
    expect([...snapToWidths(groups, false)]).toEqual([[1, 16], [2, 32], [3, 16]]);
    // a predicted loss and an importance are not on one scale: with one group lacking a curve, importance decides
    expect([...snapToWidths([{ ...groups[0], lossAt: undefined }, groups[1], groups[2]], false)]).toEqual([[1, 16], [2, 16], [3, 32]]);
  });

  it('where the curves predict no loss either way (flat, or not finite), importance decides', () => {
    const weak = new Float64Array(32).fill(0.1);
    const strong = new Float64Array(32).fill(5);
    const flat = () => 0;
    const groups = [
      { root: 1, size: 32, multiple: 16, kept: 24, scores: strong, lossAt: flat },
      { root: 2, size: 32, multiple: 16, kept: 24, scores: weak, lossAt: flat },
    ];
    // together they lose 16 of 64: one of them goes to 16, the one with the weaker channels
    expect([...snapToWidths(groups)]).toEqual([[1, 32], [2, 16]]);
    const unknown = [{ ...groups[0], lossAt: () => NaN }, { ...groups[1], lossAt: (k: number) => 32 - k }];
    expect([...snapToWidths(unknown)]).toEqual([[1, 32], [2, 16]]);
  });
});

describe('groupMultiples takes the largest multiple any layer touching the group asks for', () => {
  const probe = (kind: string, axis: KindProbe['axis'], batch: number, multiple: number): KindProbe => ({ kind, axis, batch, fixed: 16, spatial: [7, 7], curve: { counts: [], ms: [] }, multiple, scores: [], cached: false });
  const layer = (node: string, kind: string, inRoot: number | undefined, outRoot: number | undefined, depthwise = false): MacLayer => ({
    node, kind, cin: 32, cout: 32, inRoot, outRoot, inRoots: inRoot === undefined ? [] : [inRoot], outRoots: outRoot === undefined ? [] : [outRoot], macs: 1, probe: { opType: 'Conv', depthwise, spatial: [7, 7], rows: 1, attrs: {} },
  });
  it('producer output, consumer input and depthwise channels, at every batch', () => {
    const layers = [layer('a', 'conv', undefined, 1), layer('b', 'conv', 1, 2), layer('dw', 'dw', 2, 2, true), layer('fc', 'gemm', 2, undefined)];
    const probes = [probe('conv', 'out', 1, 8), probe('conv', 'out', 32, 16), probe('conv', 'in', 1, 4), probe('dw', 'channels', 1, 4), probe('gemm', 'in', 1, 1)];
    const widths = groupMultiples(layers, probes, [{ root: 1, name: 'g1' }, { root: 2, name: 'g2' }]);
    expect(widths.map((w) => w.multiple)).toEqual([16, 16]);
    expect(widths[1].from).toContain('dw (channels): 4');
  });
});

describe('snapping on a model trained elsewhere', () => {
  const widthsOf = (m: ModelProto): number[] => {
    const dims = new Map(m.graph!.initializer.map((t) => [t.name, t.dims.map(Number)]));
    return m.graph!.node.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm').map((n) => dims.get(n.input[1])![0]);
  };

  it('the real-world MNIST CNN at 50% on multiples of 16 keeps its first conv at the width under the 12 of 32 the ranking asked, not 1', async () => {
    const dense = loadModel(path.join(realWorldDir('mnist-cnn-pytorch'), 'model.onnx')).proto;
    expect(widthsOf(dense)).toEqual([32, 64, 128, 10]);
    const names = structuredGroups(dense, new Set()).groups.map((g) => g.name);
    const config = { ...DEFAULT_CONFIG, method: 'structured' as const, sparsity: 0.5, scope: 'global' as const };
    const asked = widthsOf((await pruneModel(dense, { ...config, roundTo: 1 }, { modelPath: 'model.onnx' })).model);
    expect(asked[0]).toBe(12);
    const snapped = widthsOf((await pruneModel(dense, config, { modelPath: 'model.onnx', widths: new Map(names.map((n) => [n, 16])) })).model);
    // 12 of 32 on widths 1, 2, 4, 8, 16, 32: the correction may take it to 8, the width under 12, no lower
    expect(snapped[0]).toBe(8);
  });
});
