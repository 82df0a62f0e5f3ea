import { logGamma } from './binomial.js';

/** Regularised lower incomplete gamma P(a, x) (series below a+1, continued fraction above; NR §6.2). */
export function regularizedGammaP(a: number, x: number): number {
  if (x <= 0) return 0;
  const lnPre = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return Math.min(1, sum * Math.exp(lnPre));
  }
  // Lentz's continued fraction for Q(a, x)
  let b = x + 1 - a;
  let c = 1 / 1e-300;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.max(0, 1 - Math.exp(lnPre) * h);
}

/** Upper tail of the chi-square distribution with `df` degrees of freedom. */
export function chiSquareSurvival(x: number, df: number): number {
  return 1 - regularizedGammaP(df / 2, x / 2);
}

/**
 * Chi-square test of homogeneity of two count histograms (e.g. predicted classes on clean vs shifted
 * data). Bins empty in both are dropped; df = bins − 1.
 */
export function chiSquareHomogeneity(a: readonly number[], b: readonly number[]): { statistic: number; df: number; p_value: number } {
  const na = a.reduce((s, v) => s + v, 0);
  const nb = b.reduce((s, v) => s + v, 0);
  let stat = 0;
  let bins = 0;
  for (let i = 0; i < a.length; i++) {
    const total = a[i] + b[i];
    if (total === 0) continue;
    bins++;
    const ea = (total * na) / (na + nb);
    const eb = (total * nb) / (na + nb);
    stat += (a[i] - ea) ** 2 / ea + (b[i] - eb) ** 2 / eb;
  }
  const df = Math.max(1, bins - 1);
  return { statistic: stat, df, p_value: bins < 2 ? 1 : chiSquareSurvival(stat, df) };
}

/** Two-sample Kolmogorov-Smirnov statistic and its asymptotic p-value (Kolmogorov distribution). */
export function kolmogorovSmirnov(x: ArrayLike<number>, y: ArrayLike<number>): { statistic: number; p_value: number } {
  const a = Float64Array.from(x).sort();
  const b = Float64Array.from(y).sort();
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < a.length && j < b.length) {
    const v = Math.min(a[i], b[j]);
    while (i < a.length && a[i] <= v) i++;
    while (j < b.length && b[j] <= v) j++;
    d = Math.max(d, Math.abs(i / a.length - j / b.length));
  }
  const ne = (a.length * b.length) / (a.length + b.length);
  const lambda = (Math.sqrt(ne) + 0.12 + 0.11 / Math.sqrt(ne)) * d;
  let p = 0;
  for (let k = 1; k <= 100; k++) p += 2 * (-1) ** (k - 1) * Math.exp(-2 * k * k * lambda * lambda);
  return { statistic: d, p_value: Math.min(1, Math.max(0, lambda < 0.2 ? 1 : p)) };
}

/**
 * Population stability index of `actual` against `expected` over deciles of `expected`
 * (rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 major shift). Empty bins get 1e-4.
 */
export function populationStabilityIndex(expected: ArrayLike<number>, actual: ArrayLike<number>, bins = 10): number {
  const sorted = Float64Array.from(expected).sort();
  const edges: number[] = [];
  for (let k = 1; k < bins; k++) edges.push(sorted[Math.floor((k * sorted.length) / bins)]);
  const hist = (values: ArrayLike<number>) => {
    const h = new Float64Array(bins);
    for (let i = 0; i < values.length; i++) {
      let b = 0;
      while (b < edges.length && values[i] > edges[b]) b++;
      h[b]++;
    }
    return Array.from(h, (c) => Math.max(c / values.length, 1e-4));
  };
  const e = hist(expected);
  const a = hist(actual);
  let psi = 0;
  for (let k = 0; k < bins; k++) psi += (a[k] - e[k]) * Math.log(a[k] / e[k]);
  return psi;
}
