import type { Ledger, ModelLedger, Step } from '../../src/ledger/types.js';

/** A measured step; tests override only what they are about. */
export function step(overrides: Partial<Step> = {}): Step {
  return {
    name: 'dense',
    description: 'the model as given',
    artifact: 'models/mlp.onnx',
    sparsity: 0,
    params: 118_282,
    nonzero_params: 118_282,
    flops: 117_600,
    size_bytes: 474_000,
    gzip_bytes: 438_000,
    accuracy: 0.892,
    per_class: [0.9, 0.95, 0.8],
    ece: 0.03,
    nll: 0.31,
    agreement: 1,
    latency: { batch: 1, p50_ms: 0.42, p95_ms: 0.5, runs: 30 },
    latency_by_batch: [{ batch: 1, p50_ms: 0.42, p95_ms: 0.5, runs: 30 }],
    ...overrides,
  };
}

export function sampleModel(overrides: Partial<ModelLedger> = {}): ModelLedger {
  const dense = step();
  const pruned = step({
    name: 'prune',
    description: 'unstructured magnitude pruning to 80%',
    artifact: 'out/mlp.pruned.onnx',
    sparsity: 0.8,
    nonzero_params: 23_700,
    size_bytes: 2_000_000,
    gzip_bytes: 150_000,
    accuracy: 0.888,
    per_class: [0.85, 0.95, 0.81],
    ece: 0.035,
    agreement: 0.97,
    latency: { batch: 1, p50_ms: 0.22, p95_ms: 0.31, runs: 30 },
    latency_by_batch: [{ batch: 1, p50_ms: 0.22, p95_ms: 0.31, runs: 30 }],
  });
  return {
    model: 'models/mlp.onnx',
    pruned: 'out/mlp.pruned.onnx',
    method: 'unstructured',
    target_sparsity: 0.8,
    steps: [dense, pruned],
    budgets: [
      {
        name: 'accuracy-drop',
        limit: 0.01,
        actual: 0.004,
        verdict: 'pass',
        direction: 'max',
        source: 'default',
        detail: '89.20% → 88.80%',
      },
      {
        name: 'class-accuracy-drop',
        limit: 0.03,
        actual: 0.05,
        verdict: 'fail',
        direction: 'max',
        source: 'config',
        detail: 'class 0: 90.00% → 85.00%',
      },
      {
        name: 'min-speedup',
        limit: 1.5,
        actual: 0.42 / 0.22,
        verdict: 'pass',
        direction: 'min',
        source: 'flag',
        detail: 'p50 0.42 ms → 0.22 ms at batch 1',
      },
      {
        name: 'max-size-bytes',
        limit: 2_097_152,
        actual: 2_000_000,
        verdict: 'pass',
        direction: 'max',
        source: 'flag',
        detail: 'out/mlp.pruned.onnx',
      },
      {
        name: 'latency-regression',
        limit: 0.1,
        actual: null,
        verdict: 'warn',
        direction: 'max',
        source: 'config',
        detail: 'not measured: no base model to compare against (compare mode only)',
      },
    ],
    verdict: 'fail',
    class_changes: [
      { class: 0, dense: 0.9, pruned: 0.85, drop: 0.05, support: 100 },
      { class: 2, dense: 0.8, pruned: 0.81, drop: -0.01, support: 120 },
      { class: 1, dense: 0.95, pruned: 0.95, drop: 0, support: 90 },
    ],
    eval: { data: 'fixtures/fmnist-test.npz', samples: 310, classes: 3 },
    ...overrides,
  };
}

export function sampleLedger(): Ledger {
  return {
    schema: 'prune-guard/ledger@1',
    verdict: 'fail',
    tool: { name: 'prune-guard', version: '0.1.0' },
    created_at: '2025-01-02T03:04:05.000Z',
    runtime: { onnxruntime: '1.30.0', provider: 'cpu', threads: 2, platform: 'linux-x64' },
    models: [sampleModel()],
  };
}
