import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import type { ResolvedBudget } from '../ledger/budgets.js';
import type { LedgerRuntime } from '../ledger/envelope.js';
import type { Ledger, ModelLedger } from '../ledger/types.js';
import type { Head } from '../onnx/head.js';
import type { LoadedModel } from '../onnx/model.js';
import type { ResolvedScope } from '../prune/resolveScope.js';
import type { BatchPlan } from './exported.js';

/** What one `run` is asked to do: shared by the strategies, the guarded run and the action. */
export interface RunRequest {
  model: string;
  data: string;
  calib?: string;
  shifts: { name: string; path: string }[];
  out: string;
  /** the config file the settings came from, when there is one: an input like the others */
  configFile?: string;
  config: Config;
  budgets: ResolvedBudget[];
  /** the CLI's `run` arguments as given: the ledger then carries a reproducibility record for `verify` */
  argv?: readonly string[];
}

/** What `runPipeline` measured for one model: its ledger record and what it was measured on. Files: artifacts only. */
export interface PipelineResult {
  model: ModelLedger;
  runtime: LedgerRuntime;
}

/** A guarded run's ledger and the files it published. */
export interface RunResult {
  ledger: Ledger;
  markdown: string;
  ledgerPath: string;
  markdownPath: string;
}

/** Everything a strategy (one shot with or without rounds, gradual) starts from, every input checked. */
export interface StrategyInput {
  /** the request with `scope: auto` resolved */
  req: RunRequest;
  /** the dense model, parsed; a strategy may release it once everything after reads the saved files */
  dense: LoadedModel;
  data: Dataset;
  shifts: { name: string; data: Dataset }[];
  calib?: Dataset;
  /** where the shipped model is written */
  outPath: string;
  provider: 'cpu' | 'cuda';
  scope: ResolvedScope;
  /** recovery rounds (1: one shot) */
  rounds: number;
  /** the output judged and how it is read (findHead) */
  head: Head;
  /** the batches the model runs at */
  plan: BatchPlan;
  /** what was settled about the export (a fixed batch, lifted weights), for the ledger's notes */
  exportNotes: string[];
}
