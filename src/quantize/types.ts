import type { CalibratorName } from './calibrate.js';
import type { KernelReport } from './kernels.js';
import type { ActivationType, WeightBits } from './params.js';
import type { LayerError } from './prepare.js';

/** Why a quantizable layer stayed in float. */
export type FloatReason = 'excluded' | 'narrow-first-layer' | 'depthwise' | 'error';

/** One plan of which layers stay float, as measured on the calibration set and timed against the float model. */
export interface QuantizeVariant {
  name: string;
  keep_float: string[];
  /** top-1 on the calibration slice (or agreement with the float model when it has no labels) */
  calib_quality: number;
  /** float p50 / this p50, geometric mean over the configured batch sizes, interleaved; null when not timed */
  speedup: number | null;
  chosen: boolean;
}

/** Which activation type the step ships, from the all-INT8 plan timed and scored both ways. */
export interface ActivationChoice {
  /** float p50 / the plan's p50 with each activation type, geometric mean over the batch sizes */
  uint8_speedup: number;
  int8_speedup: number;
  /** calibration quality of the plan with each type (the grids hold the same values; the kernels' arithmetic may differ) */
  uint8_calib_quality: number;
  int8_calib_quality: number;
  reason: string;
}

/** What the `quantize:int8` step did, and why: recorded in its ledger step. */
export interface QuantizeInfo {
  /** static: activation ranges calibrated ahead (QDQ); dynamic: measured per batch at run time (MatMulInteger) */
  scheme: 'static-qdq' | 'dynamic';
  activations: ActivationType;
  /**
   * static only (null for dynamic, whose activations onnxruntime quantizes to uint8 at run time): the
   * all-INT8 plan timed against float with uint8 and with int8 activations, interleaved with the plans
   */
  activation_choice?: ActivationChoice | null;
  weights: {
    type: 'int8';
    bits: WeightBits;
    granularity: 'per-channel' | 'per-tensor';
    /**
     * how the precision was chosen: static, the fused kernels' relative output error against the
     * simulated QDQ graph at 8 and 7 bits; dynamic, against the float model; null when no calibration
     * data was there to measure on and the CPU's features decided
     */
    fused_deviation: { bits8: number; bits7: number } | null;
    reason: string;
  };
  /** static only (null for dynamic): how activation ranges were set, and on how many samples decisions were measured */
  calibration: { method: CalibratorName; samples: number; decision_samples: number } | null;
  folded_batch_norms: number;
  quantized_nodes: number;
  absorbed_relus: number;
  float_layers: { node: string; reason: FloatReason; detail: string }[];
  variants: QuantizeVariant[];
  /** static: the plans' timings were read from the measurement cache (the same files timed earlier on this machine) */
  timing_cached?: boolean;
  /** calibration-slice quality of the float input and of the shipped quantized model */
  calib_quality: { metric: 'accuracy' | 'agreement'; float: number; quantized: number } | null;
  /** each quantized layer's error contribution, largest first (at most 20) */
  layer_errors: LayerError[];
  /** what onnxruntime runs, read from its optimised graph of the saved file */
  kernels: KernelReport;
}
