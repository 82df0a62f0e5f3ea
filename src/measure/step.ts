import type { Reduction } from '../prune/reduction.js';
import type { LayerSparsity } from '../prune/sparsity.js';
import type { RecoveryInfo, TemperatureInfo } from '../recover/runRecovery.js';
import type { QuantizeInfo } from '../quantize/types.js';

/**
 * What the ledger records for one step, all measured on the step's saved artifact: the step itself and
 * the latency, runtime-cost and speed-funnel records it holds.
 */

export interface LatencyStat {
  batch: number;
  p50_ms: number;
  p95_ms: number;
  /** number of timed runs behind the percentiles */
  runs: number;
  p99_ms?: number;
  mean_ms?: number;
  /** bootstrap confidence intervals [lo, hi] of the statistics above, at the ledger's confidence */
  p50_ci?: [number, number];
  p95_ci?: [number, number];
  p99_ci?: [number, number];
  mean_ci?: [number, number];
}

/** What running the model costs beyond latency. */
export interface RuntimeCost {
  /** median of 3 onnxruntime session creations, milliseconds */
  load_ms: number;
  /** samples per second at the largest measured batch (from its p50) */
  throughput_samples_per_s?: number;
  throughput_batch?: number;
  /** joules per sample from Linux RAPL; null when the runner does not expose it (never estimated) */
  energy_j_per_sample: number | null;
  energy_note: string;
  /**
   * peak resident memory of the measuring process while it loaded this model and ran its largest batch,
   * bytes (Linux VmHWM, reset before the session is created); null where the runner cannot tell
   */
  peak_rss_bytes?: number | null;
  /** the peak minus the resident memory just before the session was created: what this model added */
  session_rss_bytes?: number | null;
  memory_note?: string;
}

/** A step against the dense step: parameters -> MACs -> ideal speedup -> measured speedup -> efficiency. */
export interface SpeedFunnel {
  /** latency batch the speedups are measured at (the primary one) */
  batch: number;
  /** nonzero parameters / dense nonzero parameters */
  params_ratio: number;
  /** MACs the runtime's dense kernels execute / dense MACs */
  flops_ratio: number;
  /** MACs with a nonzero weight / dense MACs: what a kernel that skips zero weights would execute */
  sparse_flops_ratio: number;
  /** bytes of the stored weights / dense: what quantization (and structured pruning) saves in memory traffic */
  bytes_ratio?: number;
  /** 1 / sparse_flops_ratio: the speedup if time followed the MACs that matter */
  ideal_speedup: number;
  /** dense p50 / this p50 (ratio of medians of the interleaved samples); null when not measured */
  speedup: number | null;
  /** speedup / ideal_speedup: the share of the promised speedup that was realised */
  efficiency: number | null;
  /** two-sided Mann-Whitney p-value of the dense and this step's latency samples */
  p_value: number | null;
  /** what the samples support: `faster` or `slower` only when p < 0.05, else `unchanged` (within noise) */
  speed: 'faster' | 'slower' | 'unchanged' | null;
}

export interface Step {
  /** e.g. "dense", "prune", "recover:reconstruct" */
  name: string;
  /** what was done, for humans */
  description: string;
  /** path of the artifact these numbers were measured on */
  artifact: string;
  /** fraction of prunable weights that are zero, counted in the saved file */
  sparsity: number;
  /** float parameters stored in the file */
  params: number;
  /** nonzero float parameters */
  nonzero_params: number;
  /** multiply-accumulates per sample of Conv/ConvTranspose/Gemm/MatMul */
  flops: number;
  size_bytes: number;
  gzip_bytes: number;
  accuracy: number | null;
  /** Wilson interval of `accuracy` at the ledger's confidence */
  accuracy_ci?: [number, number];
  /** Wilson interval of each class's accuracy; null for a class with no sample */
  per_class_ci?: ([number, number] | null)[];
  /** accuracy per class index; null for a class with no sample in the evaluation set */
  per_class: (number | null)[] | null;
  /** rows: true class, columns: predicted class */
  confusion?: number[][];
  ece: number | null;
  nll: number | null;
  /** top-1 agreement with the dense model; 1 for the dense step */
  agreement: number | null;
  /** latency at the primary (first configured) batch size; null when not measured for this step */
  latency: LatencyStat | null;
  /** latency at every configured batch size */
  latency_by_batch: LatencyStat[];
  /** accuracy per shift set, keyed by its name */
  shift_accuracy?: Record<string, number>;
  runtime_cost?: RuntimeCost;
  layers?: LayerSparsity[];
  /** recovery steps only: what the step cost and what it gained on the calibration set */
  recovery?: RecoveryInfo;
  temperature?: TemperatureInfo;
  /**
   * bytes of the float weights in a bitmask sparse encoding (1 bit per entry + nonzero values at their
   * own width), from the saved file: the storage a sparse format would need, apart from speed
   */
  sparse_bytes?: number;
  /** where the speed went, relative to the dense step */
  funnel?: SpeedFunnel;
  /** pruning steps: the reduction requested and the one achieved in this file, with the groups left whole */
  reduction?: Reduction;
  /** `quantize:int8` steps only: how the model was quantized and which kernels onnxruntime runs for it */
  quantize?: QuantizeInfo;
}
