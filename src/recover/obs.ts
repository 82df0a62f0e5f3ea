/**
 * Fixed-mask OBS refit (SparseGPT's column sweep with the sparsity pattern given, not chosen): walk
 * the columns in order; where a row's weight in column i is pruned, its removal error divided by
 * U[i][i] is spread over that row's later columns along row i of U, the upper Cholesky factor of H^-1.
 * Kept weights absorb the compensation; pruned weights end at exactly zero.
 */
export function fixedMaskSweep(w: Float64Array, keep: Uint8Array, upper: Float64Array, rows: number, cols: number): void {
  sweepColumns(w, keep, upper, rows, cols, 0, cols);
}

/** The OBS sweep over columns [from, to): each pruned entry is zeroed and its error spread along row i of U. */
function sweepColumns(w: Float64Array, keep: Uint8Array, upper: Float64Array, rows: number, cols: number, from: number, to: number): void {
  for (let i = from; i < to; i++) {
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

/**
 * SparseGPT's sweep with the mask chosen inside it (Frantar & Alistarh 2023, Alg. 1): before each
 * block of `blockSize` columns, every row re-chooses which of the block's free entries are zero by
 * the OBS saliency w^2 / U[j][j]^2 of its weights as updated so far, then the block is swept as in
 * fixedMaskSweep. Each row zeroes as many free entries per block as `keep` zeroes there, so the
 * per-row (hence per-layer) zero count is exactly the given mask's; only which weights are zero moves.
 * `fixed` marks entries whose keep value may not move (a bias column, an input never seen).
 * `keep` is rewritten with the chosen mask.
 */
export function adaptiveMaskSweep(w: Float64Array, keep: Uint8Array, fixed: Uint8Array, upper: Float64Array, rows: number, cols: number, blockSize: number): void {
  const score = new Float64Array(cols);
  const free: number[] = [];
  for (let b0 = 0; b0 < cols; b0 += blockSize) {
    const b1 = Math.min(cols, b0 + blockSize);
    for (let r = 0; r < rows; r++) {
      const rr = r * cols;
      free.length = 0;
      let zeros = 0;
      for (let j = b0; j < b1; j++) {
        if (fixed[j]) continue;
        free.push(j);
        if (!keep[rr + j]) zeros++;
        const d = upper[j * cols + j];
        score[j] = (w[rr + j] * w[rr + j]) / (d * d);
      }
      if (zeros === 0 || zeros === free.length) continue;
      // ties broken by column so the choice is deterministic
      free.sort((a, b) => score[a] - score[b] || a - b);
      for (let k = 0; k < free.length; k++) keep[rr + free[k]] = k < zeros ? 0 : 1;
    }
    sweepColumns(w, keep, upper, rows, cols, b0, b1);
  }
}
