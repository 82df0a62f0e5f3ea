import { describe, expect, it } from 'vitest';
import { activationParams, fakeQuantize, quantizeBias, quantizeWeight, roundHalfEven } from '../../src/quantize/params.js';
import { seededWeights } from '../support/buildModel.js';

describe('quantization arithmetic', () => {
  it('rounds halves to even, as numpy.rint does', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, -2, 2, -3]);
  });

  it('uint8 activation parameters represent 0 exactly and cover the range', () => {
    for (const r of [{ min: -0.81, max: 2.02 }, { min: 0, max: 24 }, { min: 1, max: 5 }, { min: -3, max: -1 }]) {
      const p = activationParams(r);
      expect(fakeQuantize(0, p, 0, 255)).toBe(0);
      expect(Math.abs(fakeQuantize(r.min, p, 0, 255) - r.min)).toBeLessThanOrEqual(p.scale / 2 + 1e-6);
      expect(Math.abs(fakeQuantize(r.max, p, 0, 255) - r.max)).toBeLessThanOrEqual(p.scale / 2 + 1e-6);
    }
    // after ReLU the zero point is 0: the grid itself clips negatives, which is what lets a Relu be absorbed
    expect(activationParams({ min: 0, max: 24 }).zeroPoint).toBe(0);
    expect(activationParams({ min: 0, max: 0 })).toEqual({ scale: 1, zeroPoint: 0 });
  });

  it('int8 activation parameters are the uint8 grid with the zero point 128 lower: the same real values', () => {
    for (const r of [{ min: -0.81, max: 2.02 }, { min: 0, max: 24 }, { min: 1, max: 5 }, { min: -3, max: -1 }, { min: 0, max: 0 }]) {
      const u = activationParams(r, 'uint8');
      const s = activationParams(r, 'int8');
      expect(s.scale).toBe(u.scale);
      expect(s.zeroPoint).toBe(u.zeroPoint - 128);
      for (const x of [r.min, r.max, 0, (r.min + r.max) / 2, r.max * 1.5 + 1, r.min * 1.5 - 1]) expect(fakeQuantize(x, s, -128, 127)).toBe(fakeQuantize(x, u, 0, 255));
    }
    // after ReLU real 0 is the lowest level of either grid
    expect(activationParams({ min: 0, max: 24 }, 'int8').zeroPoint).toBe(-128);
  });

  it('per-channel weights: each channel\'s largest magnitude maps to ±qmax, 7 bits to ±64', () => {
    const dims = [4, 3, 3, 3];
    const w = seededWeights(4 * 27, 5);
    for (let i = 27; i < 54; i++) w[i] *= 10; // channel 1 is ten times larger
    for (let i = 81; i < 108; i++) w[i] = 0; // channel 3 is empty
    for (const bits of [8, 7] as const) {
      const q = quantizeWeight(w, dims, 0, bits);
      const qmax = bits === 8 ? 127 : 64;
      for (let c = 0; c < 3; c++) {
        const ch = Array.from(q.values.subarray(c * 27, c * 27 + 27), Math.abs);
        expect(Math.max(...ch)).toBe(qmax);
        for (let i = 0; i < 27; i++) expect(Math.abs(q.values[c * 27 + i] * q.scales[c] - w[c * 27 + i])).toBeLessThanOrEqual(q.scales[c] / 2 + 1e-7);
      }
      expect(q.scales[1] / q.scales[0]).toBeGreaterThan(5);
      expect(q.scales[3]).toBe(1);
    }
  });

  it('per-channel along axis 1 (Gemm without transB: W[K, N]) and per-tensor', () => {
    const w = Float32Array.from([1, -20, 0.5, 10, 2, -4]); // [3 rows, 2 columns]
    const q = quantizeWeight(w, [3, 2], 1, 8);
    expect(Array.from(q.scales)).toEqual([Math.fround(2 / 127), Math.fround(20 / 127)]);
    expect(q.values[1]).toBe(-127);
    const t = quantizeWeight(w, [3, 2], -1, 8);
    expect(t.scales.length).toBe(1);
    expect(t.values[1]).toBe(-127);
  });

  it('biases are int32 at input scale x weight scale, per channel', () => {
    const b = quantizeBias(Float32Array.from([0.5, -1]), 0.1, Float32Array.from([0.01, 0.02]));
    expect(Array.from(b.values)).toEqual([500, -500]);
    expect(b.scales[1]).toBeCloseTo(0.002, 9);
  });
});
