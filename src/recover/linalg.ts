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
    // four rows at a time share each load of row j; every entry keeps its own sum in the same order
    let i = j + 1;
    for (; i + 3 < n; i += 4) {
      const r0 = i * n;
      const r1 = r0 + n;
      const r2 = r1 + n;
      const r3 = r2 + n;
      let s0 = a[r0 + j];
      let s1 = a[r1 + j];
      let s2 = a[r2 + j];
      let s3 = a[r3 + j];
      for (let k = 0; k < j; k++) {
        const v = a[rj + k];
        s0 -= a[r0 + k] * v;
        s1 -= a[r1 + k] * v;
        s2 -= a[r2 + k] * v;
        s3 -= a[r3 + k] * v;
      }
      a[r0 + j] = s0 / ljj;
      a[r1 + j] = s1 / ljj;
      a[r2 + j] = s2 / ljj;
      a[r3 + j] = s3 / ljj;
    }
    for (; i < n; i++) {
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
  // row i of L^-1: (e_i - sum_{k<i} L[i,k] * row k of L^-1) / L[i,i]. Four rows at a time share each load
  // of row k for k below the four; each entry keeps its own sum in the same order (k ascending)
  let i0 = 0;
  for (; i0 + 3 < n; i0 += 4) {
    const r0 = i0 * n;
    for (let k = 0; k < i0; k++) addColumnTimesRow4(inv, r0, n, l, r0 + k, n, -1, inv, k * n, k + 1);
    for (let i = i0; i < i0 + 4; i++) finishRow(l, inv, n, i, i0);
  }
  for (let i = i0; i < n; i++) finishRow(l, inv, n, i, 0);
  return inv;
}

/** Row i of L^-1 given the terms of rows k < from already subtracted: the rest of the terms, then the scale. */
function finishRow(l: Float64Array, inv: Float64Array, n: number, i: number, from: number): void {
  const ri = i * n;
  inv[ri + i] = 1 / l[ri + i];
  for (let k = from; k < i; k++) {
    const lik = l[ri + k];
    if (lik === 0) continue;
    const rk = k * n;
    for (let j = 0; j <= k; j++) inv[ri + j] -= lik * inv[rk + j];
  }
  const d = 1 / l[ri + i];
  for (let j = 0; j < i; j++) inv[ri + j] *= d;
}

/** M^T M for a lower-triangular M: the inverse of L L^T when M = L^-1. */
export function lowerTransposeTimesLower(m: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  // out[i][j] = sum_k m[k][i] m[k][j]; accumulate row k of M as an outer product (k >= max(i, j)). The
  // product is symmetric: only j <= i is summed, then mirrored. Four rows k at a time are added to each
  // entry in one load and store, in the same order (k ascending)
  let k0 = 0;
  for (; k0 + 3 < n; k0 += 4) {
    const q0 = k0 * n;
    const q1 = q0 + n;
    const q2 = q1 + n;
    const q3 = q2 + n;
    for (let i = 0; i <= k0; i++) {
      const x0 = m[q0 + i];
      const x1 = m[q1 + i];
      const x2 = m[q2 + i];
      const x3 = m[q3 + i];
      const ri = i * n;
      for (let j = 0; j <= i; j++) {
        let o = out[ri + j];
        o += x0 * m[q0 + j];
        o += x1 * m[q1 + j];
        o += x2 * m[q2 + j];
        o += x3 * m[q3 + j];
        out[ri + j] = o;
      }
    }
    // i above k0: only the rows k >= i contribute
    for (let k = k0 + 1; k < k0 + 4; k++) addOuterRow(m, out, n, k, k0 + 1);
  }
  for (let k = k0; k < n; k++) addOuterRow(m, out, n, k, 0);
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) out[j * n + i] = out[i * n + j];
  return out;
}

/** Adds row k of M's outer product to the lower half of `out`, rows i in [from, k]. */
function addOuterRow(m: Float64Array, out: Float64Array, n: number, k: number, from: number): void {
  const rk = k * n;
  for (let i = from; i <= k; i++) {
    const mki = m[rk + i];
    if (mki === 0) continue;
    const ri = i * n;
    for (let j = 0; j <= i; j++) out[ri + j] += mki * m[rk + j];
  }
}

/**
 * H^-1 and the upper Cholesky factor U of H^-1 (H^-1 = U^T U), as SparseGPT uses them: row i of U
 * carries the error-compensation direction for column i onto columns i+1.., and U[i][i]^2 is the
 * OBS saliency denominator. Adds `damp` * mean(diag) to the diagonal, raising it until H is positive
 * definite (a layer whose input never varies on the calibration set has a singular H).
 * A recent result for an identical H and damp is returned again (copied): a layer that reads the
 * model's input sees the same H in every recovery round and in both allocations that rounds compare.
 */
export function inverseHessian(h: Float64Array, n: number, dampFraction: number): { inv: Float64Array; upper: Float64Array } {
  const hit = n >= RECENT_MIN_COLS ? RECENT.find((e) => e.damp === dampFraction && sameArray(e.h, h)) : undefined;
  if (hit) {
    // most recently used last, so eviction drops the oldest
    RECENT.splice(RECENT.indexOf(hit), 1);
    RECENT.push(hit);
    return { inv: Float64Array.from(hit.inv), upper: Float64Array.from(hit.upper) };
  }
  const out = solveInverseHessian(h, n, dampFraction);
  if (n >= RECENT_MIN_COLS) remember({ h: Float64Array.from(h), damp: dampFraction, inv: Float64Array.from(out.inv), upper: Float64Array.from(out.upper) });
  return out;
}

interface RecentInverse {
  h: Float64Array;
  damp: number;
  inv: Float64Array;
  upper: Float64Array;
}

/** Below this width a solve costs less than the comparison and copies. */
const RECENT_MIN_COLS = 128;
/** Bytes the recent results may hold: three n x n float64 arrays each, a 1024-wide block is 25 MB. */
const RECENT_MAX_BYTES = 64 * 2 ** 20;
const RECENT: RecentInverse[] = [];

function remember(e: RecentInverse): void {
  const bytes = (x: RecentInverse) => 8 * (x.h.length + x.inv.length + x.upper.length);
  if (bytes(e) > RECENT_MAX_BYTES) return;
  RECENT.push(e);
  let total = RECENT.reduce((t, x) => t + bytes(x), 0);
  while (total > RECENT_MAX_BYTES) total -= bytes(RECENT.shift()!);
}

function sameArray(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

function solveInverseHessian(h: Float64Array, n: number, dampFraction: number): { inv: Float64Array; upper: Float64Array } {
  let mean = 0;
  for (let i = 0; i < n; i++) mean += h[i * n + i];
  mean = mean / n || 1;
  for (let damp = dampFraction; ; damp *= 10) {
    // U straight from one Cholesky, in reversed order: with J the exchange matrix, J (H + dI) J = Lr Lr^T
    // gives H + dI = (J Lr J)(J Lr J)^T with J Lr J upper, so U = (J Lr J)^-1 = J Lr^-1 J is upper and
    // H^-1 = U^T U = J (Lr^-T Lr^-1) J (reversing a row-major n x n array is J A J). A second
    // factorisation of H^-1 itself would cost as much again
    const a = Float64Array.from(h);
    for (let i = 0; i < n; i++) a[i * n + i] += damp * mean;
    a.reverse();
    if (!choleskyLower(a, n)) {
      if (damp > 1e6) throw new Error('inverseHessian: matrix is not positive definite even with heavy damping');
      continue;
    }
    const m = invertLower(a, n);
    const inv = lowerTransposeTimesLower(m, n).reverse();
    return { inv, upper: m.reverse() };
  }
}

/** C = A B for row-major A [m x k], B [k x n]. */
export function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  // four rows of C at a time share each load of a row of B; every entry keeps its own sum in the same order
  let i = 0;
  for (; i + 3 < m; i += 4) for (let p = 0; p < k; p++) addColumnTimesRow4(c, i * n, n, a, i * k + p, k, 1, b, p * n, n);
  for (; i < m; i++) {
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

/**
 * dst[o + r * stride + j] += sign * coef[c + r * cstride] * src[s + j] for the four rows r < 4 and j < len:
 * the four rows share each load of the source row, and each entry gets one term (sign -1 adds the negated
 * product, the same bits as subtracting it). Nothing to add when the four coefficients are zero.
 */
function addColumnTimesRow4(dst: Float64Array, o: number, stride: number, coef: Float64Array, c: number, cstride: number, sign: number, src: Float64Array, s: number, len: number): void {
  const x0 = sign * coef[c];
  const x1 = sign * coef[c + cstride];
  const x2 = sign * coef[c + 2 * cstride];
  const x3 = sign * coef[c + 3 * cstride];
  if (x0 === 0 && x1 === 0 && x2 === 0 && x3 === 0) return;
  const o1 = o + stride;
  const o2 = o1 + stride;
  const o3 = o2 + stride;
  for (let j = 0; j < len; j++) {
    const v = src[s + j];
    dst[o + j] += x0 * v;
    dst[o1 + j] += x1 * v;
    dst[o2 + j] += x2 * v;
    dst[o3 + j] += x3 * v;
  }
}
