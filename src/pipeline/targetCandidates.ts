import type { PruneOutcome } from '../prune/pruneModel.js';
import type { LatencyPlan, Spread } from '../prune/structured/latencyModel.js';
import type { CandidateScore } from '../prune/structured/record.js';
import { better, type CalibScore } from '../recover/calibScore.js';

/**
 * How a latency target's cut is spread: the candidates tried, from where the loss curves alone put it
 * (evenness 0) through per-group caps to about the same fraction from every group (1), and the uniform
 * cut `--scope layer` would make. The curves price each group pruned alone and before recovery, so the
 * allocation they favour is not always the one recovery repairs best; which spread wins is measured,
 * not assumed.
 */
export const SPREADS: readonly Spread[] = [...[0, 1 / 3, 2 / 3, 1].map((evenness) => ({ kind: 'capped' as const, evenness })), { kind: 'uniform' }];

/** A candidate spread as made at the budget: saved to `file`, its kept counts as a signature. */
export interface MadeSpread {
  spread: Spread;
  kept: string;
  macs: number;
  plan?: LatencyPlan;
  file: string;
}

/** The uniform cut that met the target, as measured in the correction loop. */
export interface Incumbent {
  kept: string;
  macs: number;
  plan?: LatencyPlan;
  outcome: PruneOutcome;
  speedup: number;
  p50: number;
}

export interface MeasuredChoice {
  candidates: CandidateScore[];
  /** index into `candidates` of the one that ships */
  chosen: number;
  /** a spread that beat the uniform cut, rebuilt, with its measured speed */
  winner?: { made: MadeSpread; outcome: PruneOutcome; speedup: number; p50: number };
}

/**
 * Once the uniform cut met the target: every other spread of `grid` made at the same budget, timed
 * against dense in one interleaved pass (`time`: p50 of dense and of each file), and those at or above
 * `needed` scored with the uniform cut; one replaces it only with a better score (lower held-out NLL,
 * then accuracy). Spreads that chose the same channels are timed and scored once. Only the winner is
 * rebuilt and kept in memory.
 */
export async function chooseMeasured(
  incumbent: Incumbent,
  grid: readonly Spread[],
  needed: number,
  io: { make: (s: Spread) => Promise<MadeSpread>; time: (files: readonly string[]) => Promise<number[]>; rebuild: (s: Spread) => Promise<PruneOutcome>; score: (o: PruneOutcome) => Promise<CalibScore> },
): Promise<MeasuredChoice> {
  const made: MadeSpread[] = [];
  for (const s of grid) if (s.kind !== 'uniform') made.push(await io.make(s));
  const distinct = made.filter((m, i) => m.kept !== incumbent.kept && made.findIndex((x) => x.kept === m.kept) === i);
  const ms = distinct.length ? await io.time(distinct.map((m) => m.file)) : [];
  const speed = new Map(distinct.map((m, i) => [m.kept, { speedup: ms[0] / ms[i + 1], p50: ms[i + 1] }]));
  speed.set(incumbent.kept, { speedup: incumbent.speedup, p50: incumbent.p50 });
  const scores = new Map<string, CalibScore>([[incumbent.kept, await io.score(incumbent.outcome)]]);
  let best: { made: MadeSpread; outcome: PruneOutcome } | undefined;
  for (const m of distinct) {
    if (speed.get(m.kept)!.speedup < needed) continue;
    const o = await io.rebuild(m.spread);
    const sc = await io.score(o);
    scores.set(m.kept, sc);
    if (better(sc, scores.get(best?.made.kept ?? incumbent.kept)!)) best = { made: m, outcome: o };
  }
  const entry = (spread: Spread, kept: string, macs: number, plan?: LatencyPlan): CandidateScore => {
    const sc = scores.get(kept);
    return {
      spread: spread.kind,
      evenness: spread.kind === 'capped' ? spread.evenness : 1,
      max_group_ratio: plan?.max_group_ratio ?? 1,
      predicted_ms: plan?.predicted_ms ?? NaN,
      reached: plan?.reached ?? true,
      macs,
      speedup: speed.get(kept)!.speedup,
      calib_accuracy: sc?.accuracy ?? null,
      calib_nll: sc?.nll ?? null,
    };
  };
  const candidates = [...made.map((m) => entry(m.spread, m.kept, m.macs, m.plan)), entry({ kind: 'uniform' }, incumbent.kept, incumbent.macs, incumbent.plan)];
  if (!best) return { candidates, chosen: candidates.length - 1 };
  return { candidates, chosen: made.indexOf(best.made), winner: { made: best.made, outcome: best.outcome, ...speed.get(best.made.kept)! } };
}
