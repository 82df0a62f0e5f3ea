import { choleskyLower } from './linalg.js';

/**
 * Ridge strength chosen by two-fold cross-validation instead of fixed: the refit's least-squares
 * start W = G (H + damp * mean(diag H) I)^-1 is fit on one half of the calibration patches and its
 * output error measured on the other half, both ways, for every candidate damp; the lowest total
 * held-out error wins. A layer fed from 512 pooled samples with hundreds of inputs (a classifier after
 * global pooling, a wide fc) needs far more damping than a conv layer with thousands of patches, and a
 * fixed fraction is either too weak for the first or too strong for the second.
 *
 * Folds are given as Gram matrices, so nothing here touches the patches: for fold k, H_k = X_k X_k^T
 * (inputs of the pruned model) and G_k = T_k X_k^T (targets times inputs). The held-out error of W on
 * fold k is, up to a constant, tr(W H_k W^T) - 2 tr(W G_k^T).
 */
export const DAMP_GRID: readonly number[] = [1e-4, 1e-3, 1e-2, 1e-1, 1];

/**
 * Wider blocks keep the fixed damp: ten Cholesky solves of a 1024-wide block cost minutes of CPU in
 * JavaScript on a loaded machine, more than the rest of the refit.
 */
export const CROSS_VALIDATE_MAX_COLS = 640;

export interface Fold {
  /** [m x m] */
  h: Float64Array;
  /** [rows x m] */
  g: Float64Array;
}

export function crossValidatedDamp(folds: readonly [Fold, Fold], rows: number, m: number, grid: readonly number[] = DAMP_GRID): { damp: number; errors: number[] } {
  const errors = grid.map((damp) => {
    let total = 0;
    for (let k = 0; k < 2; k++) {
      const fit = folds[k];
      const held = folds[1 - k];
      const w = ridgeSolve(fit.h, fit.g, rows, m, damp);
      if (!w) return Infinity;
      total += heldOutError(w, held, rows, m);
    }
    return total;
  });
  return lowest(grid, errors);
}

/**
 * Wider blocks fit on at most this many patches choose their damp from the patches themselves
 * (crossValidatedDampDual): the solves are then of half this size, whatever the width.
 */
export const DUAL_MAX_PATCHES = 1024;

/**
 * The damp crossValidatedDamp would choose, computed from the patches instead of the m x m Grams: a
 * layer after a flatten reads thousands of columns from a few hundred samples (the real-world CIFAR-10
 * CNN's classifier: 1,600 columns after a 30% cut, 500 samples), too wide for the Gram solves and the
 * layer that needs damping most, since it has fewer patches than columns. With X_k the fold's patches and
 * T_k its targets, W_k = T_k^T (X_k X_k^T + d I)^-1 X_k is the same ridge solution, so the held-out output
 * error needs only the kernel `k` = X X^T [n x n] and the targets `t` = T [n x rows]: the first `half`
 * patches are fold A, the rest fold B, and d is damp * mean(diag X_k^T X_k) as in ridgeSolve.
 */
export function crossValidatedDampDual(k: Float64Array, t: Float64Array, n: number, rows: number, m: number, half: number, grid: readonly number[] = DAMP_GRID): { damp: number; errors: number[] } {
  const folds = [
    [0, half],
    [half, n],
  ] as const;
  const errors = grid.map((damp) => {
    let total = 0;
    for (let f = 0; f < 2; f++) {
      const [a0, a1] = folds[f];
      const [b0, b1] = folds[1 - f];
      const na = a1 - a0;
      const kaa = new Float64Array(na * na);
      for (let i = 0; i < na; i++) for (let j = 0; j < na; j++) kaa[i * na + j] = k[(a0 + i) * n + a0 + j];
      const ta = new Float64Array(rows * na);
      for (let i = 0; i < na; i++) for (let r = 0; r < rows; r++) ta[r * na + i] = t[(a0 + i) * rows + r];
      // Z^T = T_A^T (K_AA + d I)^-1: ridgeSolve scales by mean(diag K_AA) = trace / na, the primal by trace / m
      const z = ridgeSolve(kaa, ta, rows, na, (damp * na) / m);
      if (!z) return Infinity;
      // predictions on fold B: K_BA Z; error ||P||^2 - 2 <P, T_B>, as heldOutError's
      for (let b = b0; b < b1; b++) {
        for (let r = 0; r < rows; r++) {
          let pr = 0;
          for (let i = 0; i < na; i++) pr += k[b * n + a0 + i] * z[r * na + i];
          total += pr * (pr - 2 * t[b * rows + r]);
        }
      }
    }
    return total;
  });
  return lowest(grid, errors);
}

/** The damp of the grid with the lowest held-out error (the first on a tie), with every error. */
function lowest(grid: readonly number[], errors: number[]): { damp: number; errors: number[] } {
  let best = 0;
  for (let i = 1; i < grid.length; i++) if (errors[i] < errors[best]) best = i;
  return { damp: grid[best], errors };
}

/** W = G (H + damp * mean(diag H) I)^-1 by Cholesky, one row at a time; null when not positive definite. */
export function ridgeSolve(h: Float64Array, g: Float64Array, rows: number, m: number, damp: number): Float64Array | null {
  let mean = 0;
  for (let i = 0; i < m; i++) mean += h[i * m + i];
  mean = mean / m || 1;
  const l = Float64Array.from(h);
  for (let i = 0; i < m; i++) l[i * m + i] += damp * mean;
  if (!choleskyLower(l, m)) return null;
  // L^T row-major, so the back substitution reads rows instead of striding down columns
  const lt = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let k = 0; k <= i; k++) lt[k * m + i] = l[i * m + k];
  const w = new Float64Array(rows * m);
  const y = new Float64Array(m);
  for (let r = 0; r < rows; r++) {
    // (H + dI) w_r^T = g_r^T: L y = g_r, then L^T w = y
    for (let i = 0; i < m; i++) {
      let s = g[r * m + i];
      const ri = i * m;
      for (let k = 0; k < i; k++) s -= l[ri + k] * y[k];
      y[i] = s / l[ri + i];
    }
    const wr = w.subarray(r * m, (r + 1) * m);
    for (let i = m - 1; i >= 0; i--) {
      let s = y[i];
      const ri = i * m;
      for (let k = i + 1; k < m; k++) s -= lt[ri + k] * wr[k];
      wr[i] = s / lt[ri + i];
    }
  }
  return w;
}

/** tr(W H W^T) - 2 tr(W G^T): the squared output error on the fold minus its target energy. */
function heldOutError(w: Float64Array, fold: Fold, rows: number, m: number): number {
  let total = 0;
  const hw = new Float64Array(m);
  for (let r = 0; r < rows; r++) {
    const wr = w.subarray(r * m, (r + 1) * m);
    hw.fill(0);
    for (let i = 0; i < m; i++) {
      const wi = wr[i];
      if (wi === 0) continue;
      const hi = i * m;
      for (let j = 0; j < m; j++) hw[j] += wi * fold.h[hi + j];
    }
    for (let j = 0; j < m; j++) total += wr[j] * (hw[j] - 2 * fold.g[r * m + j]);
  }
  return total;
}
