/**
 * The ledger is a public contract (`prune-guard/ledger@1`): other tools read these fields, so they are
 * extended, never renamed. `schema/ledger.schema.json` is the machine-readable form of the same shape.
 */
import type { BudgetName, BudgetSource, Verdict } from '../config/budgets.js';
import type { ClassDigest, ClassSummary, LatencyStat, RuntimeCost, SpeedFunnel, Step } from '../measure/step.js';
import type { ClassChange } from '../measure/stats/uncertainty.js';
import type { OutputFidelity } from '../measure/fidelity.js';
import type { SequentialRecord } from '../measure/stats/sequential.js';
import type { Reduction, SkippedGroup } from '../prune/reduction.js';
import type { SkipReason } from '../prune/structured/skip.js';
import type { LayerSparsity } from '../prune/sparsity.js';
import type { SensitivityInfo, SensitivityLayer, SensitivityPoint } from '../prune/sensitivity/types.js';
import type { RecoveryInfo, TemperatureInfo } from '../recover/runRecovery.js';
import type { ScoreForm, Task } from '../onnx/head.js';
import type { AllocationRecord, TargetRecord } from '../prune/structured/record.js';

// records produced below the ledger are declared where they are produced (a lower layer may not import
// this file) and re-exported here, so the whole ledger shape is read and imported from one place
export type {
  AllocationRecord,
  BudgetName,
  ClassDigest,
  ClassSummary,
  ClassChange,
  LatencyStat,
  LayerSparsity,
  OutputFidelity,
  RecoveryInfo,
  Reduction,
  RuntimeCost,
  SensitivityInfo,
  SensitivityLayer,
  SensitivityPoint,
  SkippedGroup,
  SkipReason,
  SpeedFunnel,
  Step,
  TargetRecord,
  TemperatureInfo,
  Verdict,
};

export const LEDGER_SCHEMA = 'prune-guard/ledger@1' as const;

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
  /** the limit as the user wrote it, e.g. `0.5pt`, `2MB`, `1.3x` (a bare number as given); absent for defaults */
  written?: string;
  /** where the limit was set: `FILE:LINE` in the config file, `--budget`, or `action input budgets` */
  set_at?: string;
  /** budgets judged per output: the output this limit holds; absent when it holds every output (the worst is judged) */
  output?: string;
  /**
   * `latency-regression` and `min-speedup`: how the sampling until a decision went (rounds, looks, why
   * it stopped) and the runner's noise measured on the way; its estimate and interval are of judged /
   * reference − 1, the budget's own `actual` and `ci` are in the budget's terms
   */
  sequential?: SequentialRecord;
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

/** The evaluation set and how the model was read on it. */
/** The class changes not listed in `class_changes`. */
export interface ClassChangesRest {
  classes: number;
  /** how many of them lost accuracy, and how many gained */
  lost: number;
  gained: number;
  /** largest drop among them (the shown ones are larger or beyond the budget) */
  largest_drop: number | null;
}

export interface EvalInfo {
  data: string;
  samples: number;
  /** classes of a softmax or logits output; 2 for a binary sigmoid; the labels of a multi-label sigmoid */
  classes: number;
  /** the output judged */
  output?: string;
  /** multiclass: one class per sample; binary: one sigmoid decision; multilabel: one sigmoid decision per label */
  task?: Task;
  /** what the output's values are (a Softmax behind Flatten or Squeeze is still probabilities) */
  scores?: ScoreForm;
  /** samples per evaluation run */
  batch?: number;
  /** set when the model's inputs fix the batch: evaluation, calibration and latency all ran at it */
  fixed_batch?: number;
  /** the fidelity task: the outputs compared with the dense model's */
  outputs?: string[];
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
  /** classes sorted by accuracy drop, largest first (with many classes, only the ones that matter: see compact.ts) */
  class_changes: ClassChange[];
  /** with many classes: the class changes not listed in `class_changes`, summarised */
  class_changes_rest?: ClassChangesRest;
  eval: EvalInfo;
  /** what quality was judged by: class labels, or each output's fidelity to the dense model (`steps[].fidelity`); absent: classification */
  task?: 'classification' | 'fidelity';
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
  /** structured: the widths kept counts were rounded to (measured, recorded or fixed) and a latency target's plan and attempts */
  allocation?: AllocationRecord;
  /**
   * the recovery-time-budget safety stop fired: recovery stopped early in this stage, so the shipped
   * model is not what an uninterrupted run computes; the verdict is then at least `warn`
   */
  cut_short?: { stage: 'reconstruct' | 'bn-stats' | 'distill'; limit_s: number };
  /** `--schedule gradual` only: every schedule step with its budget verdicts, why it stopped, which step ships */
  schedule?: ScheduleLedger;
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
  /**
   * the base run's own budgets (its dense model against its shipped one), so a budget the head breaks
   * can be told apart as new in the pull request or already broken on base
   */
  base_budgets?: BudgetResult[];
  verdict: Verdict;
}

/**
 * The reproducibility record of a `run`: the same inputs (by hash), settings, versions, quality threads
 * and seeds give the same pruned file (`pruned_sha256`) and the same quality numbers, idle or loaded.
 */
export interface Reproduce {
  /** the `run` arguments as given, without `--out`; `verify` adds its own */
  argv: string[];
  /** the working directory relative paths in `argv` are read from */
  cwd: string;
  /** every file the run read, as its flag named it, with the sha256 of its bytes when the run started */
  inputs: { flag: string; path: string; sha256: string }[];
  /** sha256 of the resolved settings and budgets (canonical JSON) */
  config_sha256: string;
  versions: { prune_guard: string; onnxruntime: string; node: string };
  /** onnxruntime intra-op threads of every quality measurement (latency may use others) */
  quality_threads: number;
  seeds: { reconstruct_patches: number; distill: number; bootstrap: number };
  /** sha256 of the shipped pruned file; null when the run wrote none (stopped by its time budget) */
  pruned_sha256: string | null;
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
  /** `prune-guard run` only: what `prune-guard verify` needs to re-run it and check the result */
  reproduce?: Reproduce;
  timed_out?: TimedOut;
  /** a merged ledger (the action's, over several models or shards): runs after the first that also timed out */
  more_timed_out?: TimedOut[];
}
