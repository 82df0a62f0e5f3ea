import { twoSidedZ } from './normal.js';

export type Interval = [number, number];

/**
 * Wilson score interval for a binomial proportion (Wilson 1927; Newcombe 1998 method 3). Unlike the
 * normal-approximation interval it stays inside [0, 1] and keeps its coverage near 0% and 100%
 * accuracy, where classifiers live. `n = 0` gives the uninformative [0, 1].
 */
export function wilsonInterval(successes: number, n: number, confidence = 0.95): Interval {
  if (n <= 0) return [0, 1];
  const z = twoSidedZ(confidence);
  const p = successes / n;
  const z2 = z * z;
  const centre = p + z2 / (2 * n);
  const spread = z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  const denom = 1 + z2 / n;
  // at 0 or n successes the bound is exactly 0 or 1; rounding would otherwise leave 1e-17 or 0.9999999999999998
  const lo = successes <= 0 ? 0 : Math.max(0, (centre - spread) / denom);
  const hi = successes >= n ? 1 : Math.min(1, (centre + spread) / denom);
  return [lo, hi];
}
