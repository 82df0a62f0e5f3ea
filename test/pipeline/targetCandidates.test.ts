import { describe, expect, it } from 'vitest';
import { chooseMeasured } from '../../src/pipeline/targetCandidates.js';
import type { PruneOutcome } from '../../src/prune/pruneModel.js';
import type { Spread } from '../../src/prune/structured/latencyModel.js';

/** A pruned outcome as the search sees it: an identity to score by. */
const outcome = (name: string): PruneOutcome => ({ name }) as unknown as PruneOutcome;

describe('choosing how a latency target cuts, once the uniform cut met it', () => {
  const spreads: Spread[] = [{ kind: 'capped', evenness: 0 }, { kind: 'capped', evenness: 0.5 }, { kind: 'capped', evenness: 1 }, { kind: 'uniform' }];
  const uniform = { kept: 'u', macs: 20, outcome: outcome('u'), speedup: 2.05, p50: 1 / 2.05 };

  /** Each capped spread's channels, file time (dense at 1 ms) and score; the uniform cut's score. */
  function run(table: Record<number, { kept: string; ms: number; nll: number }>, uniformNll: number) {
    const scored: string[] = [];
    const timed: string[][] = [];
    const io = {
      make: async (s: Spread) => {
        const e = s.kind === 'capped' ? s.evenness : -1;
        const t = table[e];
        return { spread: s, kept: t.kept, macs: 10, file: `${t.kept}.onnx` };
      },
      time: async (files: readonly string[]) => {
        timed.push([...files]);
        return [1, ...files.map((f) => Object.values(table).find((t) => `${t.kept}.onnx` === f)!.ms)];
      },
      rebuild: async (s: Spread) => outcome(table[s.kind === 'capped' ? s.evenness : -1].kept),
      score: async (o: PruneOutcome) => {
        const name = (o as unknown as { name: string }).name;
        scored.push(name);
        return { nll: name === 'u' ? uniformNll : Object.values(table).find((t) => t.kept === name)!.nll, accuracy: 0.9 };
      },
    };
    return { io, scored, timed };
  }

  it('scores only the spreads measured at or above the target, and ships one that scored better than the uniform cut', async () => {
    const { io, scored } = run({ 0: { kept: 'a', ms: 0.6, nll: 0.2 }, 0.5: { kept: 'b', ms: 0.45, nll: 0.25 }, 1: { kept: 'c', ms: 0.4, nll: 0.35 } }, 0.3);
    const c = await chooseMeasured(uniform, spreads, 2, io);
    // a ran 1.67x: short of 2x, never scored, whatever its score would have been
    expect(scored).toEqual(['u', 'b', 'c']);
    expect(c.candidates.map((k) => [k.spread, k.evenness, k.calib_nll])).toEqual([['capped', 0, null], ['capped', 0.5, 0.25], ['capped', 1, 0.35], ['uniform', 1, 0.3]]);
    expect(c.candidates[0].speedup).toBeCloseTo(1 / 0.6);
    expect(c.chosen).toBe(1);
    expect(c.winner).toMatchObject({ made: { kept: 'b' }, speedup: 1 / 0.45, p50: 0.45 });
  });

  it('keeps the uniform cut on a tie or when every other spread fell short; repeats are timed and scored once', async () => {
    const tie = run({ 0: { kept: 'a', ms: 0.45, nll: 0.3 }, 0.5: { kept: 'a', ms: 0.45, nll: 0.3 }, 1: { kept: 'u', ms: 0.5, nll: 0 } }, 0.3);
    const c = await chooseMeasured(uniform, spreads, 2, tie.io);
    expect(c.chosen).toBe(3);
    expect(c.winner).toBeUndefined();
    expect(tie.timed).toEqual([['a.onnx']]);
    expect(tie.scored).toEqual(['u', 'a']);
    // the repeat of the uniform cut carries its speed and score
    expect(c.candidates[2]).toMatchObject({ speedup: 2.05, calib_nll: 0.3 });
    const short = run({ 0: { kept: 'a', ms: 0.7, nll: 0 }, 0.5: { kept: 'b', ms: 0.8, nll: 0 }, 1: { kept: 'c', ms: 0.9, nll: 0 } }, 0.5);
    expect((await chooseMeasured(uniform, spreads, 2, short.io)).chosen).toBe(3);
    expect(short.scored).toEqual(['u']);
  });
});
