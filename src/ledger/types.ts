/**
 * The ledger is a public contract (`prune-guard/ledger@1`): other tools read these fields, so they are
 * extended, never renamed. `schema/ledger.schema.json` is the machine-readable form of the same shape.
 */
export const LEDGER_SCHEMA = 'prune-guard/ledger@1' as const;

export type Verdict = 'pass' | 'warn' | 'fail';

export interface LatencyStat {
  batch: number;
  p50_ms: number;
  p95_ms: number;
  /** number of timed runs behind the percentiles */
  runs: number;
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
  layers?: LayerSparsity[];
}

export type BudgetName =
  | 'accuracy-drop'
  | 'class-accuracy-drop'
  | 'ece-increase'
  | 'min-speedup'
  | 'latency-regression'
  | 'p95-latency-ms'
  | 'max-size-bytes'
  | 'shift-accuracy-drop';

export interface BudgetResult {
  name: BudgetName;
  limit: number;
  /** null when the metric was not measured in this run: then the verdict is never `pass` */
  actual: number | null;
  verdict: Verdict;
  /** `max` means actual must stay <= limit, `min` means actual must stay >= limit */
  direction: 'max' | 'min';
  /** where the limit came from */
  source: 'default' | 'config' | 'flag';
  /** why, for humans: the class that dropped most, "not measured: ..." */
  detail: string;
}

export interface ClassChange {
  class: number;
  dense: number;
  pruned: number;
  drop: number;
  support: number;
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
  runtime: { onnxruntime: string; provider: string; threads: number; platform: string };
  models: ModelLedger[];
  timed_out?: TimedOut;
}
