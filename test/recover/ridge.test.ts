import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/util/random.js';
import { crossValidatedDamp, crossValidatedDampDual, ridgeSolve, type Fold } from '../../src/recover/ridge.js';

/** Gram matrices of a linear problem y = w x + noise with n samples of m inputs. */
function fold(n: number, m: number, w: Float64Array, noise: number, next: () => number): Fold {
  const h = new Float64Array(m * m);
  const g = new Float64Array(m);
  const x = new Float64Array(m);
  for (let s = 0; s < n; s++) {
    for (let j = 0; j < m; j++) x[j] = next() * 2 - 1;
    let y = noise * (next() * 2 - 1);
    for (let j = 0; j < m; j++) y += w[j] * x[j];
    for (let i = 0; i < m; i++) {
      g[i] += y * x[i];
      for (let j = 0; j < m; j++) h[i * m + j] += x[i] * x[j];
    }
  }
  return { h, g };
}

describe('ridge least squares', () => {
  it('ridgeSolve with a tiny damp recovers the weights of a noiseless problem', () => {
    const next = seededRandom(3);
    const w = Float64Array.from({ length: 6 }, () => next() - 0.5);
    const f = fold(200, 6, w, 0, next);
    const fit = ridgeSolve(f.h, f.g, 1, 6, 1e-9)!;
    for (let j = 0; j < 6; j++) expect(fit[j]).toBeCloseTo(w[j], 5);
  });

  it('cross-validation picks little damping with plenty of clean samples and more when samples are few and noisy', () => {
    const next = seededRandom(5);
    const m = 40;
    const w = Float64Array.from({ length: m }, () => next() - 0.5);
    const clean = crossValidatedDamp([fold(2000, m, w, 0.01, next), fold(2000, m, w, 0.01, next)], 1, m);
    const noisy = crossValidatedDamp([fold(30, m, w, 2, next), fold(30, m, w, 2, next)], 1, m);
    expect(clean.damp).toBeLessThanOrEqual(1e-3);
    expect(noisy.damp).toBeGreaterThanOrEqual(1e-1);
  });
});

describe('cross-validation from the patches (the dual form)', () => {
  it('chooses the same damp with the same errors as the Gram form, on a problem with fewer patches than columns', () => {
    const next = seededRandom(11);
    const n = 40;
    const m = 60;
    const rows = 3;
    const half = 20;
    const x = Float64Array.from({ length: n * m }, () => next() * 2 - 1);
    const t = Float64Array.from({ length: n * rows }, () => next() * 2 - 1);
    const gram = (lo: number, hi: number): Fold => {
      const h = new Float64Array(m * m);
      const g = new Float64Array(rows * m);
      for (let s = lo; s < hi; s++) {
        for (let i = 0; i < m; i++) {
          for (let r = 0; r < rows; r++) g[r * m + i] += t[s * rows + r] * x[s * m + i];
          for (let j = 0; j < m; j++) h[i * m + j] += x[s * m + i] * x[s * m + j];
        }
      }
      return { h, g };
    };
    const k = new Float64Array(n * n);
    for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) for (let j = 0; j < m; j++) k[a * n + b] += x[a * m + j] * x[b * m + j];
    const primal = crossValidatedDamp([gram(0, half), gram(half, n)], rows, m);
    const dual = crossValidatedDampDual(k, t, n, rows, m, half);
    expect(dual.damp).toBe(primal.damp);
    dual.errors.forEach((e, i) => expect(e).toBeCloseTo(primal.errors[i], 6));
    // underdetermined and noise-only targets: the smallest damp would fit the noise
    expect(dual.damp).toBeGreaterThan(1e-4);
  });
});
