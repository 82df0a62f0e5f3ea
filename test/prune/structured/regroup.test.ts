import { describe, expect, it } from 'vitest';
import { type Factor, dimRole, regroup } from '../../../src/prune/structured/regroup.js';

const o = (n: number): Factor => ({ kind: 'opaque', n });
const headsOf = (d: number) => (n: number, pieces: readonly number[]): Factor[] | string =>
  pieces.length === 2 && pieces[1] === d ? [{ kind: 'heads', n: pieces[0] }, { kind: 'width', n: d }] : 'not heads';

describe('reshape factors', () => {
  it('[B, T, C] -> [T, B*H, D] merges the batch into the head axis (torch nn.MultiheadAttention)', () => {
    const out = regroup([[o(5)], [o(2)], [{ kind: 'chan', n: 32 }]], [5, 8, 8], headsOf(8));
    expect(out).toEqual([[o(5)], [o(2), { kind: 'heads', n: 4 }], [{ kind: 'width', n: 8 }]]);
    expect((out as Factor[][]).map(dimRole)).toEqual([{ role: 'plain' }, { role: 'heads', outer: 2 }, { role: 'width' }]);
  });

  it('[T, B, H, D] -> [T*B, H*D] merges heads back into channels', () => {
    const out = regroup([[o(5)], [o(2)], [{ kind: 'heads', n: 4 }], [{ kind: 'width', n: 8 }]], [10, 32], headsOf(8)) as Factor[][];
    expect(out.map(dimRole)).toEqual([{ role: 'plain' }, { role: 'channels', parts: false }]);
  });

  it('refuses to cut a head axis or to mix heads with tokens', () => {
    expect(regroup([[{ kind: 'heads', n: 4 }], [{ kind: 'width', n: 8 }]], [2, 16], headsOf(8))).toBe('cuts the head axis');
    const mixed = regroup([[{ kind: 'heads', n: 4 }], [o(5)], [{ kind: 'width', n: 8 }]], [20, 8], headsOf(8)) as Factor[][];
    expect(dimRole(mixed[0])).toEqual({ role: 'mixed' });
    expect(regroup([[o(6)]], [4], headsOf(8))).toMatch(/does not divide/);
  });
});
