import { describe, expect, it } from 'vitest';
import { mannWhitneyP, speedFunnel, weightFacts } from '../../src/measure/funnel.js';
import { modelCost } from '../../src/onnx/flops.js';
import { oneOpModel, seededWeights } from '../support/buildModel.js';
import { step } from '../ledger/fixtures.js';

describe('mannWhitneyP (two-sided, normal approximation with tie and continuity correction)', () => {
  it('matches hand-computed p-values', () => {
    // U = 0, mean 12.5, variance 25/12 * 11: z = 12 / 4.787 = 2.5067
    expect(mannWhitneyP([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])).toBeCloseTo(0.0121858, 6);
    // ranks 1, 3, 3 | 3, 5, 6: U = 1, tie term 24, variance 0.75 * (7 - 24/30) = 4.65, z = 3 / 2.1564
    expect(mannWhitneyP([1, 2, 2], [2, 3, 4])).toBeCloseTo(0.1641597, 6);
  });

  it('is symmetric, 1 for identical samples and for empty ones', () => {
    const a = [3, 1, 4, 1, 5, 9, 2, 6];
    const b = [2, 7, 1, 8, 2, 8, 1, 8];
    expect(mannWhitneyP(a, b)).toBeCloseTo(mannWhitneyP(b, a), 12);
    expect(mannWhitneyP([2, 2, 2], [2, 2, 2])).toBe(1);
    expect(mannWhitneyP([], [1])).toBe(1);
  });
});

describe('weightFacts', () => {
  it('bitmask encoding is 1 bit per entry plus 4 bytes per nonzero float32; MACs scale by weight density', () => {
    const w = seededWeights(24, 5);
    for (let i = 0; i < 24; i += 3) w[i] = 0; // 8 zeros, 16 nonzeros
    const model = oneOpModel({ opType: 'Gemm', x: [1, 8], y: [1, 3], weight: { dims: [3, 8], values: w }, ints: { transB: 1 } });
    const facts = weightFacts(model);
    expect(facts.sparseBytes).toBe(Math.ceil(24 / 8) + 16 * 4);
    expect(modelCost(model).macs).toBe(24);
    expect(facts.sparseMacs).toBe(16);
  });

  it('a dense weight keeps every MAC', () => {
    const model = oneOpModel({ opType: 'MatMul', x: [1, 8], y: [1, 5], weight: { dims: [8, 5], values: seededWeights(40, 2) } });
    expect(weightFacts(model).sparseMacs).toBe(40);
    expect(weightFacts(model).sparseBytes).toBe(5 + 40 * 4);
  });
});

describe('speedFunnel', () => {
  const dense = step({ nonzero_params: 1000, flops: 10_000 });
  const pruned = step({ name: 'prune', nonzero_params: 520, flops: 10_000 });
  // tensors really smaller (channels removed): a kernel that can be faster or slower
  const shrunk = { ...pruned, params: 600 };
  const denseSamples = [1.0, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97, 1.0];
  const denseFacts = { sparseBytes: 0, sparseMacs: 10_000, weightBytes: 4000, kernels: 'Conv:8x4x3x3/1' };
  const shrunkKernels = 'Conv:2x4x3x3/1';

  it('follows parameters -> MACs -> ideal -> measured -> efficiency against the dense step', () => {
    const f = speedFunnel({ dense, step: shrunk, denseFacts, stepFacts: { sparseBytes: 0, sparseMacs: 5000, weightBytes: 1000, kernels: shrunkKernels }, denseSamples, stepSamples: denseSamples.map((x) => x * 0.8) });
    expect(f.params_ratio).toBeCloseTo(0.52, 12);
    expect(f.flops_ratio).toBe(1);
    expect(f.sparse_flops_ratio).toBe(0.5);
    expect(f.bytes_ratio).toBe(0.25);
    expect(f.ideal_speedup).toBe(2);
    expect(f.speedup).toBeCloseTo(1.25, 12);
    expect(f.efficiency).toBeCloseTo(0.625, 12);
    expect(f.speed).toBe('faster');
    expect(f.p_value).toBeLessThan(0.001);
  });

  it('calls overlapping samples unchanged, even when their medians differ', () => {
    const stepSamples = [0.99, 1.01, 0.96, 1.0, 0.97, 1.02, 0.98, 0.985];
    const f = speedFunnel({ dense, step: pruned, denseFacts, stepFacts: { sparseBytes: 0, sparseMacs: 5000, weightBytes: 1000, kernels: shrunkKernels }, denseSamples, stepSamples });
    expect(f.speedup).not.toBe(1);
    expect(f.p_value).toBeGreaterThan(0.05);
    expect(f.speed).toBe('unchanged');
  });

  it('reports a real slowdown as slower', () => {
    const f = speedFunnel({ dense, step: shrunk, denseFacts, stepFacts: { sparseBytes: 0, sparseMacs: 10_000, weightBytes: 1000, kernels: shrunkKernels }, denseSamples, stepSamples: denseSamples.map((x) => x * 1.5) });
    expect(f.speed).toBe('slower');
    expect(f.speedup).toBeCloseTo(1 / 1.5, 12);
  });

  it('never claims a speed change between models running the same dense kernels (same MACs and tensor sizes)', () => {
    const sameShapes = { ...pruned, flops: dense.flops, params: dense.params };
    const f = speedFunnel({ dense, step: sameShapes, denseFacts, stepFacts: { sparseBytes: 0, sparseMacs: 5000, weightBytes: 4000, kernels: denseFacts.kernels }, denseSamples, stepSamples: denseSamples.map((x) => x * 0.9) });
    expect(f.p_value).toBeLessThan(0.05);
    expect(f.speed).toBe('unchanged');
  });

  it('claims the speedup of quantized weights: same MACs and shapes, but stored narrower and run by integer kernels', () => {
    const quantized = { ...pruned, name: 'quantize:int8', flops: dense.flops, params: dense.params };
    const f = speedFunnel({ dense, step: quantized, denseFacts, stepFacts: { sparseBytes: 0, sparseMacs: 10_000, weightBytes: 1000, kernels: 'Conv:8x4x3x3/3' }, denseSamples, stepSamples: denseSamples.map((x) => x * 0.6) });
    expect(f.p_value).toBeLessThan(0.05);
    expect(f.speed).toBe('faster');
  });

  it('has no speed claim when latency was not measured', () => {
    const f = speedFunnel({ dense, step: pruned, denseFacts, stepFacts: { sparseBytes: 0, sparseMacs: 5000, weightBytes: 1000, kernels: shrunkKernels }, denseSamples: [], stepSamples: [] });
    expect(f).toMatchObject({ speedup: null, efficiency: null, p_value: null, speed: null, ideal_speedup: 2 });
  });
});

describe('a step slower than dense', () => {
  it('is named at every batch where its median is above dense, with the Mann-Whitney p-value', async () => {
    const { slowerThanDense } = await import('../../src/measure/funnel.js');
    const dense = [[1, 1.1, 0.9, 1, 1.05], [10, 10.5, 9.5, 10, 10.2]];
    const step = [[0.5, 0.55, 0.45, 0.5, 0.52], [12, 12.5, 11.5, 12, 12.2]];
    const slow = slowerThanDense([1, 32], dense, step);
    expect(slow.map((s) => s.batch)).toEqual([32]);
    expect(slow[0].speedup).toBeCloseTo(10 / 12);
    expect(slow[0].p_value).toBeLessThan(0.05);
    expect(slowerThanDense([1], [[1, 1, 1]], [[1, 1, 1]])).toEqual([]);
  });
});
