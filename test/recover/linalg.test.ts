import { describe, expect, it } from 'vitest';
import { choleskyLower, inverseHessian, invertLower, lowerTransposeTimesLower, matmul } from '../../src/recover/linalg.js';
import { adaptiveMaskSweep, fixedMaskSweep, reconstructionError } from '../../src/recover/obs.js';

/** X^T X of `samples` rows whose features share a common component by `shared` (activations do). */
function randomGram(n: number, samples: number, seed: number, shared = 0): Float64Array {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  const x = Float64Array.from({ length: samples * n }, rand);
  for (let k = 0; k < samples; k++) {
    const z = rand();
    for (let i = 0; i < n; i++) x[k * n + i] += shared * z;
  }
  const h = new Float64Array(n * n);
  for (let k = 0; k < samples; k++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) h[i * n + j] += x[k * n + i] * x[k * n + j];
  return h;
}

describe('inverseHessian', () => {
  it('returns (H + damp) ^-1 and its upper Cholesky factor', () => {
    const n = 12;
    const h = randomGram(n, 40, 7);
    const { inv, upper } = inverseHessian(h, n, 0);
    const eye = matmul(h, inv, n, n, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(eye[i * n + j]).toBeCloseTo(i === j ? 1 : 0, 8);
    const ut = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) ut[i * n + j] = upper[j * n + i];
    const back = matmul(ut, upper, n, n, n);
    for (let k = 0; k < n * n; k++) expect(back[k]).toBeCloseTo(inv[k], 8);
  });

  it('damps a singular H (a never-active input) until it can be inverted', () => {
    const n = 6;
    const h = randomGram(n, 20, 3);
    for (let j = 0; j < n; j++) h[2 * n + j] = h[j * n + 2] = 0;
    const { inv } = inverseHessian(h, n, 0.01);
    expect(inv.every(Number.isFinite)).toBe(true);
  });
});

describe('fixedMaskSweep', () => {
  it('zeroes exactly the masked weights and beats plain masking on ||W X - W_pruned X||', () => {
    const rows = 5;
    const cols = 16;
    const h = randomGram(cols, 64, 11, 2);
    let s = 5;
    const w = Float64Array.from({ length: rows * cols }, () => ((s = (s * 16807) % 2147483647) / 2147483647) - 0.5);
    const keep = Uint8Array.from(w, (v) => (Math.abs(v) > 0.25 ? 1 : 0));
    const masked = Float64Array.from(w, (v, i) => (keep[i] ? v : 0));
    const swept = Float64Array.from(w);
    const { upper } = inverseHessian(h, cols, 0.01);
    fixedMaskSweep(swept, keep, upper, rows, cols);
    for (let i = 0; i < w.length; i++) if (!keep[i]) expect(swept[i]).toBe(0);
    expect(reconstructionError(w, swept, h, rows, cols)).toBeLessThan(0.9 * reconstructionError(w, masked, h, rows, cols));
  });
});

describe('adaptiveMaskSweep', () => {
  it('on a diagonal H zeroes the weight with the smallest w^2 H_jj, not the smallest |w|', () => {
    // magnitude would zero column 0 (|1| < |2|); its input is 100x stronger, so OBS saliency 100 vs 4
    const h = Float64Array.from([100, 0, 0, 1]);
    const { upper } = inverseHessian(h, 2, 0);
    const w = Float64Array.from([1, 2]);
    const keep = Uint8Array.from([0, 1]);
    adaptiveMaskSweep(w, keep, new Uint8Array(2), upper, 1, 2, 2);
    expect(Array.from(keep)).toEqual([1, 0]);
    expect(Array.from(w)).toEqual([1, 0]);
    // a fixed column keeps its mask entry
    const w2 = Float64Array.from([1, 2]);
    const keep2 = Uint8Array.from([0, 1]);
    adaptiveMaskSweep(w2, keep2, Uint8Array.from([1, 0]), upper, 1, 2, 2);
    expect(Array.from(keep2)).toEqual([0, 1]);
    expect(w2[0]).toBe(0);
  });

  it('keeps every row zero count per block and reconstructs no worse than the fixed-mask sweep', () => {
    const rows = 8;
    const cols = 48;
    const h = randomGram(cols, 200, 13, 2);
    let s = 9;
    const w = Float64Array.from({ length: rows * cols }, () => ((s = (s * 16807) % 2147483647) / 2147483647) - 0.5);
    const keep = Uint8Array.from(w, (v) => (Math.abs(v) > 0.4 ? 1 : 0)); // ~80% zero, uneven per row
    const { upper } = inverseHessian(h, cols, 0.01);
    const fixedSwept = Float64Array.from(w);
    fixedMaskSweep(fixedSwept, keep, upper, rows, cols);
    const chosen = Uint8Array.from(keep);
    const adaptive = Float64Array.from(w);
    adaptiveMaskSweep(adaptive, chosen, new Uint8Array(cols), upper, rows, cols, 16);
    let moved = 0;
    for (let r = 0; r < rows; r++) {
      for (let b = 0; b < cols; b += 16) {
        let zerosBefore = 0;
        let zerosAfter = 0;
        for (let j = b; j < b + 16; j++) {
          zerosBefore += keep[r * cols + j] ? 0 : 1;
          zerosAfter += adaptive[r * cols + j] === 0 ? 1 : 0;
          expect(adaptive[r * cols + j] === 0).toBe(chosen[r * cols + j] === 0);
          if (chosen[r * cols + j] !== keep[r * cols + j]) moved++;
        }
        expect(zerosAfter).toBe(zerosBefore);
      }
    }
    expect(moved).toBeGreaterThan(0);
    expect(reconstructionError(w, adaptive, h, rows, cols)).toBeLessThanOrEqual(reconstructionError(w, fixedSwept, h, rows, cols));
  });
});

/** The plain loops each blocked kernel must match bit for bit (every entry summed in the same order). */
const plain = {
  cholesky(a: Float64Array, n: number): boolean {
    for (let j = 0; j < n; j++) {
      let d = a[j * n + j];
      for (let k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
      if (!(d > 0)) return false;
      a[j * n + j] = Math.sqrt(d);
      for (let i = j + 1; i < n; i++) {
        let s = a[i * n + j];
        for (let k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
        a[i * n + j] = s / a[j * n + j];
      }
    }
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) a[i * n + j] = 0;
    return true;
  },
  invertLower(l: Float64Array, n: number): Float64Array {
    const inv = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      inv[i * n + i] = 1 / l[i * n + i];
      for (let k = 0; k < i; k++) for (let j = 0; j <= k; j++) inv[i * n + j] -= l[i * n + k] * inv[k * n + j];
      for (let j = 0; j < i; j++) inv[i * n + j] *= 1 / l[i * n + i];
    }
    return inv;
  },
  lowerTransposeTimesLower(m: Float64Array, n: number): Float64Array {
    const out = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) for (let k = i; k < n; k++) out[i * n + j] += m[k * n + i] * m[k * n + j];
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) out[j * n + i] = out[i * n + j];
    return out;
  },
  matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
    const c = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) c[i * n + j] += a[i * k + p] * b[p * n + j];
    return c;
  },
};

const sameBits = (a: Float64Array, b: Float64Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

describe('blocked kernels', () => {
  it('give the same bits as the plain loops, at sizes that leave a partial block', () => {
    for (const n of [1, 3, 4, 7, 13, 34]) {
      const h = randomGram(n, 3 * n, n, 1);
      for (let i = 0; i < n; i++) h[i * n + i] += 0.01;
      const a = Float64Array.from(h);
      const b = Float64Array.from(h);
      expect(choleskyLower(a, n)).toBe(true);
      expect(plain.cholesky(b, n)).toBe(true);
      expect(sameBits(a, b), `cholesky n=${n}`).toBe(true);
      const inv = invertLower(a, n);
      expect(sameBits(inv, plain.invertLower(a, n)), `invertLower n=${n}`).toBe(true);
      expect(sameBits(lowerTransposeTimesLower(inv, n), plain.lowerTransposeTimesLower(inv, n)), `lowerTransposeTimesLower n=${n}`).toBe(true);
      const rows = n + 2;
      const w = Float64Array.from({ length: rows * n }, (_, i) => Math.sin(i + n));
      expect(sameBits(matmul(w, h, rows, n, n), plain.matmul(w, h, rows, n, n)), `matmul n=${n}`).toBe(true);
    }
  });
});

describe('inverseHessian on a repeated H', () => {
  it('gives the same bits again, in copies the caller may change', () => {
    const n = 130;
    const h = randomGram(n, 300, 17, 1);
    const first = inverseHessian(h, n, 0.01);
    const expected = { inv: Float64Array.from(first.inv), upper: Float64Array.from(first.upper) };
    first.inv.fill(0);
    first.upper.fill(0);
    const again = inverseHessian(Float64Array.from(h), n, 0.01);
    expect(sameBits(again.inv, expected.inv)).toBe(true);
    expect(sameBits(again.upper, expected.upper)).toBe(true);
    // another damp is another solve
    const damped = inverseHessian(h, n, 0.1);
    expect(sameBits(damped.inv, expected.inv)).toBe(false);
  });
});
