/**
 * Dense symmetric linear algebra on Float64Array (row-major n x n), sized for one layer's Hessian
 * (a few hundred to ~1000 columns). Inner loops run along rows so they stay contiguous in memory.
 */

/** Lower Cholesky factor L of A (A = L L^T), in place over A's lower triangle; the upper is zeroed. */
export function choleskyLower(a: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let d = a[rj + j];
    for (let k = 0; k < j; k++) d -= a[rj + k] * a[rj + k];
    if (!(d > 0)) return false;
    const ljj = Math.sqrt(d);
    a[rj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = a[ri + j];
      for (let k = 0; k < j; k++) s -= a[ri + k] * a[rj + k];
      a[ri + j] = s / ljj;
    }
  }
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) a[i * n + j] = 0;
  return true;
}

/** Inverse of a lower-triangular L (forward substitution column by column), as a new lower matrix. */
export function invertLower(l: Float64Array, n: number): Float64Array {
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    inv[ri + i] = 1 / l[ri + i];
    // row i of L^-1: (e_i - sum_{k<i} L[i,k] * row k of L^-1) / L[i,i]
    for (let k = 0; k < i; k++) {
      const lik = l[ri + k];
      if (lik === 0) continue;
      const rk = k * n;
      for (let j = 0; j <= k; j++) inv[ri + j] -= lik * inv[rk + j];
    }
    const d = 1 / l[ri + i];
    for (let j = 0; j < i; j++) inv[ri + j] *= d;
  }
  return inv;
}

/** M^T M for a lower-triangular M: the inverse of L L^T when M = L^-1. */
export function lowerTransposeTimesLower(m: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  // out[i][j] = sum_k m[k][i] m[k][j]; accumulate row k of M as an outer product (k >= max(i, j)). The
  // product is symmetric: only j <= i is summed, then mirrored (the same terms in the same order, so the
  // same bits as summing both halves, at half the work)
  for (let k = 0; k < n; k++) {
    const rk = k * n;
    for (let i = 0; i <= k; i++) {
      const mki = m[rk + i];
      if (mki === 0) continue;
      const ri = i * n;
      for (let j = 0; j <= i; j++) out[ri + j] += mki * m[rk + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) out[j * n + i] = out[i * n + j];
  return out;
}

/**
 * H^-1 and the upper Cholesky factor U of H^-1 (H^-1 = U^T U), as SparseGPT uses them: row i of U
 * carries the error-compensation direction for column i onto columns i+1.., and U[i][i]^2 is the
 * OBS saliency denominator. Adds `damp` * mean(diag) to the diagonal, raising it until H is positive
 * definite (a layer whose input never varies on the calibration set has a singular H).
 */
export function inverseHessian(h: Float64Array, n: number, dampFraction: number): { inv: Float64Array; upper: Float64Array } {
  let mean = 0;
  for (let i = 0; i < n; i++) mean += h[i * n + i];
  mean = mean / n || 1;
  for (let damp = dampFraction; ; damp *= 10) {
    const a = Float64Array.from(h);
    for (let i = 0; i < n; i++) a[i * n + i] += damp * mean;
    if (!choleskyLower(a, n)) {
      if (damp > 1e6) throw new Error('inverseHessian: matrix is not positive definite even with heavy damping');
      continue;
    }
    const inv = lowerTransposeTimesLower(invertLower(a, n), n);
    const l2 = Float64Array.from(inv);
    if (!choleskyLower(l2, n)) continue;
    // U = L2^T
    const upper = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) upper[i * n + j] = l2[j * n + i];
    return { inv, upper };
  }
}

/** C = A B for row-major A [m x k], B [k x n]. */
export function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ri = i * n;
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      if (aip === 0) continue;
      const rp = p * n;
      for (let j = 0; j < n; j++) c[ri + j] += aip * b[rp + j];
    }
  }
  return c;
}
