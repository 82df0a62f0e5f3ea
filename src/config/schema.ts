import { BUDGETS, BUDGET_NAMES } from '../ledger/budgets.js';
import type { BudgetName } from '../ledger/types.js';

export const PRUNE_METHODS = ['unstructured', 'structured', 'hybrid'] as const;
/** a named method, or an N:M pattern such as "2:4" (N of every M consecutive weights kept) */
export type PruneMethod = (typeof PRUNE_METHODS)[number] | `${number}:${number}`;

export const RECOVERIES = ['none', 'reconstruct', 'distill', 'auto', 'command'] as const;
export type Recovery = (typeof RECOVERIES)[number];

export const SCOPES = ['global', 'layer'] as const;
/** whether the magnitude threshold is shared by all layers or set per layer */
export type Scope = (typeof SCOPES)[number];

export interface LatencyConfig {
  warmup: number;
  runs: number;
  /** 0 = all cores */
  threads: number;
}

/** `.prune-guard.yml` after validation; every field has a default. */
export interface Config {
  sparsity: number;
  method: PruneMethod;
  recovery: Recovery;
  scope: Scope;
  /** globs over node or initializer names that are never pruned */
  exclude: string[];
  keepFirstLayer: boolean;
  keepLastLayer: boolean;
  /** divide the shipped model's logits by the temperature fitted on the calibration set */
  bakeTemperature: boolean;
  /** shell command run by `recovery: command`; '' when unset */
  recoveryCommand: string;
  /** seconds recovery may spend before it stops refitting further layers; 0 = no limit */
  recoveryTimeBudget: number;
  /** latency batch sizes; the first is the primary one shown in the ledger */
  batchSizes: number[];
  latency: LatencyConfig;
  evalBatchSize: number;
  confidence: number;
  /** limits set in the file only; defaults are applied by `resolveBudgets` so their source is recorded */
  budgets: Partial<Record<BudgetName, number>>;
}

export const DEFAULT_CONFIG: Readonly<Config> = Object.freeze({
  sparsity: 0.5,
  method: 'unstructured',
  recovery: 'auto',
  scope: 'global',
  exclude: [],
  keepFirstLayer: false,
  keepLastLayer: false,
  bakeTemperature: false,
  recoveryCommand: '',
  recoveryTimeBudget: 0,
  batchSizes: [1, 32],
  latency: { warmup: 10, runs: 30, threads: 0 },
  evalBatchSize: 256,
  confidence: 0.95,
  budgets: {},
});

/** Schema fragment; `description` is the phrase after "must be" in error messages. */
export interface SchemaNode {
  description: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  [keyword: string]: unknown;
}

const wholeNumber = (minimum: number): SchemaNode => ({
  type: 'integer',
  minimum,
  description: `a whole number of ${minimum} or more`,
});
const boolean: SchemaNode = { type: 'boolean', description: 'true or false' };
const oneOf = (values: readonly string[]): SchemaNode => ({
  enum: [...values],
  description: `one of ${values.join(', ')}`,
});

/** JSON Schema (2020-12) of `.prune-guard.yml`, kebab-case keys as written in the file. */
export const CONFIG_SCHEMA: SchemaNode = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  additionalProperties: false,
  description: "a mapping of settings like 'sparsity: 0.5'",
  properties: {
    sparsity: { type: 'number', minimum: 0, exclusiveMaximum: 1, description: 'a number between 0 and 1' },
    method: {
      type: 'string',
      anyOf: [{ enum: [...PRUNE_METHODS] }, { pattern: '^[1-9][0-9]*:[1-9][0-9]*$' }],
      description: `one of ${PRUNE_METHODS.join(', ')} or an N:M pattern like "2:4"`,
    },
    recovery: oneOf(RECOVERIES),
    scope: oneOf(SCOPES),
    exclude: {
      type: 'array',
      items: { type: 'string', minLength: 1, description: 'a non-empty glob' },
      description: 'a list of globs like ["*.bias"]',
    },
    'keep-first-layer': boolean,
    'keep-last-layer': boolean,
    'bake-temperature': boolean,
    'recovery-time-budget': { type: 'number', minimum: 0, description: 'a number of seconds (0 = no limit)' },
    'recovery-command': { type: 'string', description: 'a shell command like "python finetune.py"' },
    'batch-sizes': {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: wholeNumber(1),
      description: 'a non-empty list of distinct batch sizes like [1, 32]',
    },
    latency: {
      type: 'object',
      additionalProperties: false,
      properties: { warmup: wholeNumber(0), runs: wholeNumber(1), threads: wholeNumber(0) },
      description: 'a mapping like { warmup: 10, runs: 30, threads: 0 }',
    },
    'eval-batch-size': wholeNumber(1),
    confidence: {
      type: 'number',
      exclusiveMinimum: 0,
      exclusiveMaximum: 1,
      description: 'a number between 0 and 1 like 0.95',
    },
    budgets: {
      type: 'object',
      additionalProperties: false,
      // limits may carry units ("1%", "2MB"); parseBudgetValue checks them after the schema
      properties: Object.fromEntries(
        BUDGET_NAMES.map((name) => [name, { type: ['number', 'string'], description: BUDGETS[name].expect }]),
      ),
      description: 'a mapping of budget names to limits like { accuracy-drop: 0.01 }',
    },
  },
};

/** The schema node describing the value at `path`, if the path is inside the schema. */
export function schemaAt(path: readonly (string | number)[]): SchemaNode | undefined {
  let node: SchemaNode | undefined = CONFIG_SCHEMA;
  for (const segment of path) {
    node = typeof segment === 'number' ? node?.items : node?.properties?.[segment];
  }
  return node;
}
