import { describe, expect, it } from 'vitest';
import { loadModel, serializeModel } from '../../../src/onnx/model.js';
import { structuredGroups, structuredPrune } from '../../../src/prune/structured/structuredPrune.js';
import { fixture } from '../../support/fixtures.js';

describe('structured pruning with recorded widths', () => {
  const dense = loadModel(fixture('resnet.onnx')).proto;
  const opts = { sparsity: 0.5, scope: 'global' as const, roundTo: 0, criterion: 'l1' as const, protectedTensors: new Set<string>() };
  const names = structuredGroups(dense, opts.protectedTensors).groups.filter((g) => !g.skip && g.size > 1).map((g) => g.name);

  it('keeps every group at a multiple of its width (or a halving of it, or whole), and says where the widths came from', async () => {
    const widths = new Map(names.map((n) => [n, 16]));
    const r = await structuredPrune(dense, { ...opts, widths });
    for (const g of r.groups.filter((x) => !x.skip && x.size > 1)) {
      expect(g.kept === g.size || g.kept % 16 === 0 || [1, 2, 4, 8].includes(g.kept), `${g.name}: ${g.kept} of ${g.size}`).toBe(true);
    }
    expect(r.widths?.groups.every((g) => g.from[0] === 'recorded')).toBe(true);
  });

  it('reproduces the same file from the same recorded table', async () => {
    const widths = new Map(names.map((n, i) => [n, i % 2 === 0 ? 8 : 16]));
    const a = await structuredPrune(dense, { ...opts, widths });
    const b = await structuredPrune(dense, { ...opts, widths: new Map(a.widths!.groups.map((g) => [g.name, g.multiple])) });
    expect(Buffer.from(serializeModel(b.model)).equals(Buffer.from(serializeModel(a.model)))).toBe(true);
  });
});
