/**
 * Fixed-mask OBS refit (SparseGPT's column sweep with the sparsity pattern given, not chosen): walk
 * the columns in order; where a row's weight in column i is pruned, its removal error divided by
 * U[i][i] is spread over that row's later columns along row i of U, the upper Cholesky factor of H^-1.
 * Kept weights absorb the compensation; pruned weights end at exactly zero.
 */
export function fixedMaskSweep(w: Float64Array, keep: Uint8Array, upper: Float64Array, rows: number, cols: number): void {
  for (let i = 0; i < cols; i++) {
    const ri = i * cols;
    const d = upper[ri + i];
    for (let r = 0; r < rows; r++) {
      const rr = r * cols;
      if (keep[rr + i]) continue;
      const err = w[rr + i] / d;
      if (err === 0) continue;
      w[rr + i] = 0;
      for (let j = i + 1; j < cols; j++) w[rr + j] -= err * upper[ri + j];
    }
  }
}

/** Sum over rows of (W X - W' X)^2 per sample, as tr((W - W') H (W - W')^T); for tests and notes. */
export function reconstructionError(wRef: Float64Array, w: Float64Array, h: Float64Array, rows: number, cols: number): number {
  let total = 0;
  const d = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) d[j] = wRef[r * cols + j] - w[r * cols + j];
    for (let i = 0; i < cols; i++) {
      if (d[i] === 0) continue;
      let s = 0;
      const ri = i * cols;
      for (let j = 0; j < cols; j++) s += h[ri + j] * d[j];
      total += d[i] * s;
    }
  }
  return total;
}
