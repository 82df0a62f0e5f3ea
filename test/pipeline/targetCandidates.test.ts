import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/schema.js';
import { loadDataset, takeSamples } from '../../src/data/dataset.js';
import { loadModel } from '../../src/onnx/model.js';
import { defaultHead } from '../../src/onnx/runtime/classifier.js';
import { QUALITY_THREADS } from '../../src/onnx/runtime/quality.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { chooseCandidate, reconstructedScore } from '../../src/pipeline/targetCandidates.js';
import { pruneModel, type PruneOutcome } from '../../src/prune/pruneModel.js';
import type { Spread } from '../../src/prune/structured/latencyModel.js';
import { calibScore } from '../../src/recover/calibScore.js';
import { fixture } from '../support/fixtures.js';
import { firstSamples } from '../support/slice.js';

/** A pruned outcome as the search sees it: its latency plan and nothing else. */
function outcome(kept: number[], predicted: number, reached = true, cap = 1): PruneOutcome {
  return { allocation: { rounding: 'measured', latency: { kept, predicted_ms: predicted, reached, max_group_ratio: cap } } } as unknown as PruneOutcome;
}

describe('choosing how evenly a latency target cuts', () => {
  it('keeps the allocation with the best held-out score, scores each distinct allocation once, and prefers one that reaches the budget', async () => {
    const spreads: Spread[] = [{ kind: 'capped', evenness: 0 }, { kind: 'capped', evenness: 0.5 }, { kind: 'capped', evenness: 0.75 }, { kind: 'uniform' }];
    const byEvenness = new Map([
      [spreads[0], { o: outcome([8, 4], 0.19, true, 1), nll: 0.35, accuracy: 0.88 }],
      [spreads[1], { o: outcome([16, 8], 0.19, true, 0.8), nll: 0.3, accuracy: 0.9 }],
      // the same channels again: not scored twice
      [spreads[2], { o: outcome([16, 8], 0.19, true, 0.7), nll: 0, accuracy: 1 }],
      // would score best, but its prediction misses the budget
      [spreads[3], { o: outcome([32, 16], 0.25, false, 0.5), nll: 0.1, accuracy: 0.95 }],
    ]);
    const scored: number[][] = [];
    const c = await chooseCandidate(
      spreads,
      async (e) => byEvenness.get(e)!.o,
      async (o) => {
        const kept = o.allocation!.latency!.kept;
        scored.push(kept);
        const hit = [...byEvenness.values()].find((v) => v.o === o)!;
        return { nll: hit.nll, accuracy: hit.accuracy };
      },
      (o) => o.allocation!.latency!.kept.reduce((a, b) => a + b, 0),
    );
    expect(scored).toEqual([[8, 4], [16, 8], [32, 16]]);
    expect(c.chosen).toBe(1);
    expect(c.outcome).toBe(byEvenness.get(spreads[1])!.o);
    expect(c.candidates.map((k) => [k.spread, k.evenness])).toEqual([['capped', 0], ['capped', 0.5], ['capped', 0.75], ['uniform', 1]]);
    // the repeat carries the score of the allocation it repeats, under its own cap
    expect(c.candidates[2]).toMatchObject({ calib_nll: 0.3, max_group_ratio: 0.7, macs: 24 });
    expect(c.candidates[c.chosen].reached).toBe(true);
  });

  it('on equal scores keeps the earlier, less even allocation', async () => {
    const outs = [outcome([8], 1), outcome([16], 1)];
    const c = await chooseCandidate([{ kind: 'capped', evenness: 0 }, { kind: 'uniform' }], async (s) => outs[s.kind === 'uniform' ? 1 : 0], async () => ({ nll: 0.2, accuracy: 0.9 }), () => 1);
    expect(c.chosen).toBe(0);
  });
});

describe('scoring a candidate after a quick reconstruction', () => {
  it('refits within the work it is given: none leaves the pruned model as it was, enough repairs it', async () => {
    const dense = loadModel(fixture('cnn-bn.onnx')).proto;
    const calib = loadDataset(firstSamples(fixture('fmnist-calib.npz'), 64), modelInputs(dense, 'cnn-bn.onnx'), { requireLabels: true });
    const pruned = await pruneModel(dense, { ...structuredClone(DEFAULT_CONFIG), method: 'structured', sparsity: 0.5, roundTo: 1 }, { modelPath: 'cnn-bn.onnx' });
    const head = defaultHead(dense);
    const held = takeSamples(calib, Array.from({ length: 32 }, (_, i) => 2 * i + 1));
    const unrefit = await calibScore(pruned.model, held, QUALITY_THREADS, head);
    expect(await reconstructedScore(dense, calib, head, 0)(pruned)).toEqual(unrefit);
    const refit = await reconstructedScore(dense, calib, head, Infinity)(pruned);
    expect(refit.nll).toBeLessThan(unrefit.nll * 0.9);
  });
});
