import type { GroupWidth, KindProbe, WidthTable } from './hardware.js';
import type { LatencyPlan } from './latencyModel.js';

/** One allocation tried for a latency target, measured against dense. */
export interface TargetAttempt {
  /** the ledger step holding this attempt's model */
  step: string;
  budget_ms: number;
  predicted_ms: number;
  reached: boolean;
  /** p50 at the target batch, interleaved with dense */
  p50_ms: number;
  speedup: number;
  macs: number;
}

/** One allocation tried at the budget the uniform cut met the target at: timed, and scored after a quick reconstruction when it ran fast enough. */
export interface CandidateScore {
  /** `uniform`: the same fraction from every group, as `--scope layer` cuts; `capped`: cost-ranked under a per-group cap */
  spread: 'capped' | 'uniform';
  /** how evenly the cut was spread: 0 where the loss curves put it, 1 about the same fraction from every group (and for `uniform`) */
  evenness: number;
  /** no group lost more than this fraction of its channels */
  max_group_ratio: number;
  predicted_ms: number;
  reached: boolean;
  macs: number;
  /** dense p50 / its p50 at the target batch, timed interleaved */
  speedup?: number;
  /** on the odd-indexed calibration samples, after reconstruction on the even-indexed ones; null when it ran short of the target and was not scored */
  calib_accuracy: number | null;
  calib_nll: number | null;
}

/** A candidate's spread as a reader names it: its evenness, or `uniform`. */
export function spreadLabel(c: Pick<CandidateScore, 'spread' | 'evenness'>): string {
  return c.spread === 'uniform' ? 'uniform' : c.evenness.toFixed(2);
}

/** A latency target (`target-speedup`, `target-latency-ms`) and how the correction loop went. */
export interface TargetRecord {
  kind: 'speedup' | 'latency-ms';
  value: number;
  batch: number;
  dense_ms: number;
  /** the speedup over dense the target amounts to */
  speedup_needed: number;
  attempts: TargetAttempt[];
  /** met; or why the loop stopped short: limit, unreachable, unchanged */
  outcome: 'met' | 'limit' | 'unreachable' | 'unchanged';
  detail: string;
  /** index into attempts of the model that ships */
  shipped: number;
  /** how many of the loop's timings were read from the measurement cache (the same files, timed earlier on this machine) */
  timings_cached?: number;
  /**
   * with labelled calibration data, once the uniform cut met the target: every spread tried at the
   * budget that met it, and the index of the one chosen (the uniform cut unless another ran at or above
   * the target and scored better; that one's own correction loop then gave the attempt that ships)
   */
  candidates?: CandidateScore[];
  chosen?: number;
}

/**
 * How structured pruning chose its kept channel counts beyond the importance ranking: the widths they
 * were rounded to (measured, fixed by `round-to`, or none) with the probes behind them, and for a latency
 * target the per-layer latency table, the prediction and every corrected attempt. With `groups` a later
 * run reproduces the same counts without measuring.
 */
export interface AllocationRecord {
  rounding: 'measured' | 'recorded' | 'fixed' | 'none';
  round_to?: number;
  machine?: string;
  onnxruntime?: string;
  threads?: number;
  batches?: number[];
  probes?: KindProbe[];
  groups?: Omit<GroupWidth, 'root'>[];
  latency?: LatencyPlan;
  target?: TargetRecord;
  /** measured widths: the whole-model timing against every group on one coarser multiple */
  width_check?: WidthCheck;
}

/**
 * The probes time each layer kind alone; a whole model may also pay for what lies between layers whose
 * widths block differently. So the prune on measured widths was timed against the same prune with every
 * group on each coarser multiple (`tried`), interleaved, and the fastest shipped.
 */
export interface WidthCheck {
  /** the fastest coarse multiple tried */
  coarse_multiple: number;
  /** that multiple in whole blocks only, no halvings below it */
  whole_blocks?: boolean;
  batches: number[];
  /** measured-widths p50 / coarse p50 per batch for that multiple: above 1, the coarse one ran faster */
  speedup: number[];
  tried: { multiple: number; whole_blocks?: boolean; speedup: number[] }[];
  chosen: 'measured' | 'coarse';
  /** read from the measurement cache rather than timed in this run */
  cached: boolean;
  /** how the candidates were timed: as float, or quantized to INT8 as a run with `quantize: int8` ships them */
  timed_as?: 'float' | 'int8';
}

/** The record of one structured prune's widths and latency plan. */
export function allocationRecord(roundTo: number, widths: WidthTable | { groups: WidthTable['groups'] } | undefined, latency: LatencyPlan | undefined): AllocationRecord {
  const rounding = roundTo > 1 ? 'fixed' : widths && 'probes' in widths ? 'measured' : widths ? 'recorded' : 'none';
  const table = widths && 'probes' in widths ? { machine: widths.machine, onnxruntime: widths.onnxruntime, threads: widths.threads, batches: widths.batches, probes: widths.probes } : {};
  return {
    rounding,
    ...(roundTo > 1 ? { round_to: roundTo } : {}),
    ...table,
    ...(widths ? { groups: widths.groups.map(({ root: _root, ...g }) => g) } : {}),
    ...(latency ? { latency } : {}),
  };
}
