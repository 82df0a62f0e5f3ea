import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../config/loadConfig.js';
import { DEFAULT_CONFIG, type Config } from '../config/schema.js';
import { applyGiven } from '../config/sources.js';
import { UserError } from '../errors.js';
import { resolveBudgets, type ResolvedBudget } from '../ledger/budgets.js';
import type { ActionInputs } from './inputs.js';

export const DEFAULT_CONFIG_FILE = '.prune-guard.yml';

/** What every model of one action run is pruned and measured with. */
export interface PipelineSettings {
  /** config file used, relative to the workspace, for annotations */
  configFile?: string;
  config: Config;
  budgets: ResolvedBudget[];
  data: string;
  calib?: string;
  shifts: { name: string; path: string }[];
}

/** Config file, then the action's inputs on top, the way the CLI layers its flags. */
export function resolveSettings(inputs: ActionInputs, workspace: string): PipelineSettings {
  const configFile = inputs.config ?? (fs.existsSync(path.join(workspace, DEFAULT_CONFIG_FILE)) ? DEFAULT_CONFIG_FILE : undefined);
  const base = configFile ? loadConfig(path.resolve(workspace, configFile), configFile) : DEFAULT_CONFIG;
  const config = applyGiven(base, inputs.settings, 'action inputs');
  if (!inputs.data) throw new UserError(`input data: the labelled evaluation set (.npz) is required in mode ${inputs.mode}; set data: path/to/test.npz`);
  return {
    configFile,
    config,
    budgets: resolveBudgets(config.budgets, inputs.budgets),
    data: path.resolve(workspace, inputs.data),
    calib: inputs.calibData ? path.resolve(workspace, inputs.calibData) : undefined,
    shifts: inputs.shiftData.map((s) => ({ name: s.name, path: path.resolve(workspace, s.path) })),
  };
}
