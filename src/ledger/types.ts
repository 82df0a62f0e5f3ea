/**
 * The ledger is a public contract (`prune-guard/ledger@1`): other tools read these fields, so they are
 * extended, never renamed. `schema/ledger.schema.json` is the machine-readable form of the same shape.
 */
import type { BudgetName, BudgetSource, Verdict } from '../config/budgets.js';

export type { BudgetName, Verdict };

export const LEDGER_SCHEMA = 'prune-guard/ledger@1' as const;

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

export interface LayerSparsity {
  /** initializer name */
  name: string;
  /** node that consumes it */
  node: string;
  total: number;
  zeros: number;
  sparsity: number;
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
}

/** Cost and gain of one recovery step; calibration-set numbers are what the step was judged on. */
export interface RecoveryInfo {
  seconds: number;
  calib_accuracy_before?: number;
  calib_accuracy_after?: number;
  calib_nll_before?: number;
  calib_nll_after?: number;
}

/** Temperature scaling fitted on the labelled calibration set for this step's model. */
export interface TemperatureInfo {
  /** logits are divided by this */
  value: number;
  /** whether the division is baked into this step's saved model (--bake-temperature) */
  baked: boolean;
  calib_nll_before: number;
  calib_nll_after: number;
  calib_ece_before: number;
  calib_ece_after: number;
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

export interface BudgetResult {
  name: BudgetName;
  limit: number;
  /** null when the metric was not measured in this run: then the verdict is never `pass` */
  actual: number | null;
  verdict: Verdict;
  /** `max` means actual must stay <= limit, `min` means actual must stay >= limit */
  direction: 'max' | 'min';
  /** where the limit came from */
  source: BudgetSource;
  /** why, for humans: the class that dropped most, "not measured: ..." */
  detail: string;
  /**
   * confidence interval [lo, hi] around `actual` when the metric is a noisy estimate: the verdict is
   * `fail` only when the whole interval is beyond the limit, `warn` when it straddles (fail in strict mode)
   */
  ci?: [number, number];
  /** confidence level of `ci`, e.g. 0.95 */
  confidence?: number;
  /** p-value of the test behind the verdict, where one applies (McNemar's exact test for accuracy) */
  p_value?: number;
}

export interface ClassChange {
  class: number;
  dense: number;
  pruned: number;
  drop: number;
  support: number;
  /** paired (Newcombe) interval of the drop at the ledger's confidence */
  drop_ci?: [number, number];
  /** McNemar's exact test of dense vs final on this class's samples */
  p_value?: number;
  /** the whole drop interval exceeds the class-accuracy-drop budget */
  beyond_budget?: boolean;
}

/** One distribution-shift set (user --shift or built-in corruption), reference vs judged model. */
export interface ShiftResult {
  name: string;
  source: 'user' | 'corruption';
  samples: number;
  /** accuracy of the reference (dense, or base in compare) and the judged model on this set */
  dense: number;
  final: number;
  /** dense − final on this set */
  drop: number;
  drop_ci?: [number, number];
  /** McNemar's exact test on this set */
  p_value?: number;
  /** (dense − final) on this set minus (dense − final) on clean data: how much the shift widens the gap */
  gap_change: number;
}

/** How a model's predictions on a shift set differ from its predictions on the clean evaluation set. */
export interface DistributionShift {
  /** two-sample Kolmogorov-Smirnov on the max-probability (confidence) distribution */
  ks: number;
  ks_p: number;
  /** population stability index of confidence over clean-set deciles (> 0.25: major shift) */
  psi: number;
  /** chi-square homogeneity of the predicted-class histograms */
  chi2: number;
  chi2_df: number;
  chi2_p: number;
}

/** Prediction-distribution tests on a shift set; the only shift check possible for sets without labels. */
export interface PredictionShift {
  name: string;
  samples: number;
  labelled: boolean;
  dense: DistributionShift;
  final: DistributionShift;
}

export interface ModelLedger {
  /** input model path as given */
  model: string;
  /** output model path */
  pruned: string;
  method: string;
  target_sparsity: number;
  steps: Step[];
  budgets: BudgetResult[];
  verdict: Verdict;
  /** classes sorted by accuracy drop, largest first */
  class_changes: ClassChange[];
  eval: { data: string; samples: number; classes: number };
  /** what the pruning stage wants the user to know (weights left dense and why); absent when none */
  notes?: string[];
  /** set by the GitHub Action on pull requests; `verdict` above then includes `vs_base.verdict` */
  vs_base?: BaseComparison;
  /** accuracy on each shift set and corruption, for both models */
  shifts?: ShiftResult[];
  prediction_shift?: PredictionShift[];
  /** the scope pruning used (`auto` resolved); absent in ledgers written before this field */
  scope?: 'global' | 'layer' | 'sensitivity' | 'sensitivity-macs';
  /** `scope: sensitivity` and `sensitivity-macs` only: per-layer sensitivity curves and the per-layer sparsity chosen from them */
  sensitivity?: SensitivityInfo;
  /** `--schedule gradual` only: every schedule step with its budget verdicts, why it stopped, which step ships */
  schedule?: ScheduleLedger;
}

/** One calibration-set measurement of a layer (or group) pruned alone. */
export interface SensitivityPoint {
  ratio: number;
  /** labels: mean NLL of the true label; against the dense model: mean KL(dense || pruned) */
  calib_nll: number;
  /** labels: top-1 accuracy; against the dense model: top-1 agreement with it */
  calib_accuracy: number;
}

export interface SensitivityLayer {
  /** initializer (unstructured) or dependency group (structured) */
  name: string;
  /** node consuming the weight (unstructured) */
  node?: string;
  /** weights (unstructured) or channels (structured) the global target counts */
  size: number;
  points: SensitivityPoint[];
  /** fraction of this layer's weights (or channels) the allocation prunes */
  allocated: number;
  /** `scope: sensitivity-macs`: MACs per sample one pruned channel of this group saves (measured) */
  macs_per_unit?: number;
  /** seconds spent measuring this layer's curve */
  seconds: number;
}

/** Sensitivity analysis behind a `scope: sensitivity` run (issue #4 item 5). */
export interface SensitivityInfo {
  /** what a point prunes: weights of one tensor by magnitude, or channels of one dependency group */
  unit: 'weights' | 'channels';
  /** what calib_nll / calib_accuracy compare with: the labels, or the dense model's predictions */
  against: 'labels' | 'dense';
  /** calibration samples every point was measured on (a capped, evenly spaced subset) */
  calib_samples: number;
  ratios: number[];
  dense: { calib_nll: number; calib_accuracy: number };
  /** largest fraction any layer may be given */
  cap: number;
  /** sum over layers of the predicted loss increase at the allocated ratios */
  predicted_increase: number;
  /** what the allocation ranked: loss per unit (`sensitivity`) or loss per MAC saved (`sensitivity-macs`); absent before this field existed = loss */
  allocation?: 'loss' | 'loss-per-mac';
  seconds: number;
  layers: SensitivityLayer[];
}

/** One step of a gradual schedule: a prune to the step's target plus its recovery, judged against dense. */
export interface ScheduleStep {
  /** 1-based position in the schedule */
  index: number;
  /** sparsity this step aimed at: of prunable weights (unstructured, hybrid), of prunable channels (structured) */
  target: number;
  /** fraction of prunable weights zero or removed, counted in the saved file */
  sparsity: number;
  /** structured: fraction of the dense model's prunable channels removed so far, counted in the graph */
  channels_removed?: number;
  /** the ledger step whose model ends this schedule step (its last recovery stage, or its prune) */
  step: string;
  artifact: string;
  /** top-1 on the labelled calibration set (what the cliff is judged on); null without one */
  calib_accuracy: number | null;
  /** top-1 on the evaluation set */
  accuracy: number | null;
  size_bytes: number;
  /** p50 latency at the primary batch, from the run's interleaved measurement */
  p50_ms: number | null;
  /** every budget judged for this step against dense, as the run's budgets are for the shipped model */
  budgets: { name: BudgetName; actual: number | null; verdict: Verdict }[];
  verdict: Verdict;
}

/** A gradual schedule: the "budget ledger" rows, one per step, and the decision they led to. */
export interface ScheduleLedger {
  kind: 'gradual';
  planned_steps: number;
  /** sparsity before the first step (the model's existing zeros; 0 for channels) */
  initial: number;
  /** the cubic schedule's per-step targets */
  targets: number[];
  patience: number;
  /** quality drop vs dense beyond which a step counts towards the cliff */
  cliff_threshold: number;
  /** what the cliff is judged on: the labelled calibration set, or the evaluation set without one */
  cliff_metric: 'calib' | 'eval';
  dense_quality: number | null;
  steps: ScheduleStep[];
  /** why the schedule stopped before its last step; null when it ran every step */
  stopped_early: { after_step: number; reason: 'budgets-met' | 'cliff'; detail: string } | null;
  /** index of the step that ships (copied to `pruned`) */
  chosen: number;
  chosen_reason: string;
  /** the unchanged dense model, kept as the rollback artifact */
  rollback: string;
}

/** The same model at the pull request's merge base, pruned and measured the same way. */
export interface BaseComparison {
  /** commit the base model was read from */
  ref: string;
  /** the model's path at that commit */
  model: string;
  /** the base run's steps, dense first and its shipped model last */
  steps: Step[];
  /** base's and head's shipped models measured again together (same data, latency interleaved): what `budgets` judged */
  pair?: [Step, Step];
  /** the head's final model checked against the base's final model: a regression is a failed one */
  budgets: BudgetResult[];
  verdict: Verdict;
}

/** Set when the run hit its time budget (`time-budget`) and stopped; the verdict is then `fail`. */
export interface TimedOut {
  /** input model the run was working on */
  model: string;
  /** pipeline stage that was running when the budget ran out, e.g. "evaluate dense", "latency" */
  stage: string;
  limit_s: number;
  elapsed_s: number;
}

export interface Ledger {
  schema: typeof LEDGER_SCHEMA;
  verdict: Verdict;
  tool: { name: 'prune-guard'; version: string };
  created_at: string;
  runtime: {
    onnxruntime: string;
    provider: string;
    threads: number;
    platform: string;
    /** e.g. why `--execution-provider auto` measured on CPU */
    notes?: string[];
  };
  models: ModelLedger[];
  timed_out?: TimedOut;
}
