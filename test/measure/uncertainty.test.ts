import { describe, expect, it } from 'vitest';
import type { Predictions } from '../../src/onnx/runtime/classifier.js';
import { latencyStat, pairedMedianRatio, relativeHalfWidth } from '../../src/measure/latency.js';
import { seededRandom } from '../../src/util/random.js';
import { accuracyIntervals, annotateClassChanges, budgetUncertainty, eceAt } from '../../src/measure/stats/uncertainty.js';
import { expectedCalibrationError } from '../../src/onnx/runtime/scores.js';

function preds(labels: Int32Array, wrong: (i: number) => boolean, seed = 1): Predictions {
  const random = seededRandom(seed);
  const n = labels.length;
  const pred = new Int32Array(n);
  const correct = new Uint8Array(n);
  const confidence = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    pred[i] = wrong(i) ? (labels[i] + 1) % 4 : labels[i];
    correct[i] = pred[i] === labels[i] ? 1 : 0;
    confidence[i] = 0.5 + 0.5 * random();
  }
  return { task: 'multiclass', classes: 4, choices: 4, perSample: 1, pred, correct, confidence, logProbLabel: new Float32Array(n), truth: labels, group: labels };
}

const labels = Int32Array.from({ length: 2000 }, (_, i) => i % 4);

describe('budgetUncertainty', () => {
  it('gives tight intervals around 0 for identical predictions (A/A)', () => {
    const a = preds(labels, (i) => i % 10 === 0);
    const u = budgetUncertainty({ labels, reference: a, candidate: a, confidence: 0.95, limits: {} });
    expect(u['accuracy-drop']!.p_value).toBe(1);
    expect(Math.abs(u['accuracy-drop']!.ci[0])).toBeLessThan(0.003);
    expect(u['accuracy-drop']!.ci[1]).toBeLessThan(0.003);
    expect(u['ece-increase']!.ci).toEqual([0, 0]);
    expect(u['class-accuracy-drop']!.ci[1]).toBeLessThan(0.01);
  });
  it('puts a real class-3 drop beyond a 5 pt budget and says which class', () => {
    const a = preds(labels, () => false);
    const b = preds(labels, (i) => labels[i] === 3 && i % 5 === 3); // class 3 loses 20%
    const u = budgetUncertainty({ labels, reference: a, candidate: b, confidence: 0.95, limits: { 'class-accuracy-drop': 0.05 } });
    expect(u['class-accuracy-drop']!.ci[0]).toBeGreaterThan(0.05);
    expect(u['accuracy-drop']!.p_value).toBeLessThan(1e-6);
    const changes = annotateClassChanges([{ class: 3, dense: 1, pruned: 0.8, drop: 0.2, support: 500 }], { labels, reference: a, candidate: b, confidence: 0.95, limits: {} }, 0.05);
    expect(changes[0].beyond_budget).toBe(true);
    expect(changes[0].drop_ci![0]).toBeLessThan(0.2);
    expect(changes[0].drop_ci![1]).toBeGreaterThan(0.2);
  });
  it('says how many samples a straddling accuracy drop needs', () => {
    const small = labels.subarray(0, 200);
    const a = preds(small, () => false);
    const b = preds(small, (i) => i % 100 === 0);
    const u = budgetUncertainty({ labels: small, reference: a, candidate: b, confidence: 0.95, limits: { 'accuracy-drop': 0.01 } });
    expect(u['accuracy-drop']!.note).toMatch(/too few samples to decide: the set has 200, about \d+ needed/);
  });
  it('bootstraps latency ratios paired by round', () => {
    const random = seededRandom(3);
    const base = Array.from({ length: 200 }, () => 10 + random());
    const head = base.map((x) => x * 1.1 + random() * 0.2);
    const u = budgetUncertainty({ labels, reference: preds(labels, () => false), candidate: preds(labels, () => false), referenceLatency: base, candidateLatency: head, confidence: 0.95, limits: {} });
    const [lo, hi] = u['latency-regression']!.ci;
    expect(lo).toBeGreaterThan(0.08);
    expect(hi).toBeLessThan(0.14);
    const r = pairedMedianRatio(base, head);
    expect(r.ratio).toBeCloseTo(1 / 1.11, 1);
    expect(relativeHalfWidth(r.ratio, r.ci)).toBeLessThan(0.03);
  });
});

describe('intervals on a step', () => {
  it('eceAt over all indices equals the metric', () => {
    const a = preds(labels, (i) => i % 7 === 0);
    const all = Int32Array.from({ length: labels.length }, (_, i) => i);
    expect(eceAt(a.confidence, a.correct, all)).toBeCloseTo(expectedCalibrationError(a.confidence, a.correct, 15), 10);
  });
  it('Wilson intervals for accuracy and each class', () => {
    const a = preds(labels, (i) => labels[i] === 0 && i % 8 === 0);
    const { accuracy_ci, per_class_ci } = accuracyIntervals(a, labels, 0.95);
    expect(accuracy_ci[0]).toBeLessThan(1 - 1 / 16);
    expect(per_class_ci[1]![1]).toBe(1);
    expect(per_class_ci[0]![0]).toBeLessThan(0.5);
  });
  it('latencyStat adds p99, mean and their intervals', () => {
    const s = latencyStat(1, Array.from({ length: 100 }, (_, i) => 1 + i / 100), 0.95);
    expect(s.p99_ms).toBeCloseTo(1.98, 1);
    expect(s.mean_ms).toBeCloseTo(1.495, 6);
    expect(s.p50_ci![0]).toBeLessThan(s.p50_ms);
    expect(s.p50_ci![1]).toBeGreaterThan(s.p50_ms);
    expect(latencyStat(1, [1, 2, 3]).p50_ci).toBeUndefined();
  });
});

describe('runtime cost', () => {
  it('throughput comes from the largest batch p50', async () => {
    const { throughput } = await import('../../src/measure/runtimeCost.js');
    expect(throughput([{ batch: 1, p50_ms: 1, p95_ms: 2, runs: 5 }, { batch: 32, p50_ms: 8, p95_ms: 9, runs: 5 }])).toEqual({ batch: 32, samples_per_s: 4000 });
    expect(throughput([])).toBeUndefined();
  });
  it('energy is null with the reason when the counter is unreadable, and per sample when it is', async () => {
    const { energyPerSample } = await import('../../src/measure/runtimeCost.js');
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const missing = await energyPerSample(async () => {}, 3, 4, '/nonexistent/energy_uj');
    expect(missing).toEqual({ joules: null, note: 'not available: /nonexistent/energy_uj is not readable on this runner' });
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rapl-')), 'energy_uj');
    let uj = 1_000_000;
    fs.writeFileSync(file, String(uj));
    const r = await energyPerSample(async () => fs.writeFileSync(file, String((uj += 600_000))), 5, 2, file);
    expect(r.joules).toBeCloseTo(0.3, 12); // 3 J over 10 samples
  });
});
