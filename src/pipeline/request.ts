import type { Config } from '../config/schema.js';
import type { ResolvedBudget } from '../ledger/budgets.js';
import type { Ledger } from '../ledger/types.js';

/** What one `run` is asked to do, and what it leaves behind: shared by the one-shot and gradual runners. */
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
}

export interface RunResult {
  ledger: Ledger;
  markdown: string;
  ledgerPath: string;
  markdownPath: string;
}
