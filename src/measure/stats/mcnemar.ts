import { binomialHalfCdf } from './binomial.js';
import { wilsonInterval, type Interval } from './wilson.js';
import { twoSidedZ } from './normal.js';

/** The 2x2 table of two classifiers judged on the same samples. */
export interface PairedTable {
  /** both right */
  both: number;
  /** only A right */
  onlyA: number;
  /** only B right */
  onlyB: number;
  /** both wrong */
  neither: number;
}

export function pairedTable(correctA: ArrayLike<number>, correctB: ArrayLike<number>): PairedTable {
  const t = { both: 0, onlyA: 0, onlyB: 0, neither: 0 };
  for (let i = 0; i < correctA.length; i++) {
    if (correctA[i]) {
      if (correctB[i]) t.both++;
      else t.onlyA++;
    } else if (correctB[i]) t.onlyB++;
    else t.neither++;
  }
  return t;
}

/**
 * McNemar's exact test (two-sided): under "A and B are equally accurate" each discordant sample is a
 * fair coin, so the smaller discordant count is Binomial(b + c, 1/2). p = min(1, 2·P(X <= min(b, c))),
 * the conditional exact test as in R's `binom.test(b, b + c)` / statsmodels `mcnemar(exact=True)`.
 */
export function mcnemarExact(onlyA: number, onlyB: number): number {
  const n = onlyA + onlyB;
  if (n === 0) return 1;
  return Math.min(1, 2 * binomialHalfCdf(Math.min(onlyA, onlyB), n));
}

/**
 * Confidence interval for accuracy(A) − accuracy(B) on paired samples: Newcombe's (1998) method 10,
 * which combines the two Wilson intervals with the correlation of the paired outcomes. It stays
 * inside [−1, 1] and, unlike Wald, is not degenerate when there are no discordant samples.
 */
export function pairedDifferenceInterval(t: PairedTable, confidence = 0.95): Interval {
  const n = t.both + t.onlyA + t.onlyB + t.neither;
  if (n === 0) return [-1, 1];
  const p1 = (t.both + t.onlyA) / n;
  const p2 = (t.both + t.onlyB) / n;
  const [l1, u1] = wilsonInterval(t.both + t.onlyA, n, confidence);
  const [l2, u2] = wilsonInterval(t.both + t.onlyB, n, confidence);
  const marginals = (t.both + t.onlyA) * (t.onlyB + t.neither) * (t.both + t.onlyB) * (t.onlyA + t.neither);
  const phi = marginals > 0 ? (t.both * t.neither - t.onlyA * t.onlyB) / Math.sqrt(marginals) : 0;
  const diff = p1 - p2;
  const lower = Math.sqrt(Math.max(0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2));
  const upper = Math.sqrt(Math.max(0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2));
  return [Math.max(-1, diff - lower), Math.min(1, diff + upper)];
}

/**
 * Smallest test set on which a true accuracy drop of `drop` would make the paired interval exclude 0
 * at this confidence, assuming the models disagree on a fraction `discordant` of samples (normal
 * approximation of McNemar: n = z²·discordant / drop²). Used to say "too few samples to decide".
 */
export function minSamplesForDrop(drop: number, discordant: number, confidence = 0.95): number {
  const z = twoSidedZ(confidence);
  const d = Math.max(discordant, drop);
  return Math.ceil((z * z * d) / (drop * drop));
}
