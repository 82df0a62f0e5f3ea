import { BUDGETS, BUDGET_NAMES, type BudgetName } from './budgets.js';

export const PRUNE_METHODS = ['unstructured', 'structured', 'hybrid'] as const;
/** a named method, or an N:M pattern such as "2:4" (N of every M consecutive weights kept) */
export type PruneMethod = (typeof PRUNE_METHODS)[number] | `${number}:${number}`;

export const RECOVERIES = ['none', 'reconstruct', 'distill', 'auto', 'command'] as const;
export type Recovery = (typeof RECOVERIES)[number];

/** structured pruning: how channel importance is scored */
export const CRITERIA = ['l1', 'l2', 'bn-scale', 'activation', 'sparsegpt'] as const;
export type CriterionName = (typeof CRITERIA)[number];

export const SCOPES = ['global', 'layer', 'sensitivity', 'sensitivity-macs', 'auto'] as const;
/**
 * whether the magnitude threshold is shared by all layers or set per layer; `sensitivity` sets each
 * layer's ratio from its measured calibration-loss curve (needs calibration data); `sensitivity-macs`
 * (structured) removes channels where that loss per MAC saved is smallest; `auto` picks one of these by
 * method and data (src/prune/resolveScope.ts)
 */
export type Scope = (typeof SCOPES)[number];
/** a scope after `auto` is resolved: what pruning actually uses */
export type ConcreteScope = Exclude<Scope, 'auto'>;

export interface LatencyConfig {
  warmup: number;
  runs: number;
  /** 0 = all cores */
  threads: number;
  /** adaptive stop: sample until the speedup interval's relative half-width is at most this; 0 = fixed `runs` */
  targetRelCi: number;
  /** time cap of the adaptive stop in seconds, all batch sizes together; 0 = none */
  maxSeconds: number;
  /** each timed sample is the fastest of this many back-to-back runs (filters preemption on shared runners) */
  repeat: number;
}

/** built-in synthetic shifts (src/measure/corruptions.ts): image kinds perturb pixels, tabular kinds perturb features */
export const IMAGE_CORRUPTIONS = ['gaussian-noise', 'contrast', 'brightness', 'blur'] as const;
export const TABULAR_CORRUPTIONS = ['feature-noise', 'feature-dropout'] as const;
export const CORRUPTIONS = [...IMAGE_CORRUPTIONS, ...TABULAR_CORRUPTIONS] as const;
export type CorruptionKind = (typeof CORRUPTIONS)[number];

/** pruning schedules (src/prune/schedule.ts): all at once, or the cubic gradual schedule */
export const SCHEDULES = ['oneshot', 'gradual'] as const;
export type ScheduleKind = (typeof SCHEDULES)[number];

export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'auto'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

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
  /** seconds recovery may spend before it stops refitting further layers or distilling; 0 = no limit (default 240: auto ends in minutes) */
  recoveryTimeBudget: number;
  /** latency batch sizes; the first is the primary one shown in the ledger */
  batchSizes: number[];
  latency: LatencyConfig;
  evalBatchSize: number;
  confidence: number;
  /** structured: kept channel counts are rounded to multiples of this (1 = no rounding) */
  roundTo: number;
  /** structured: channel importance criterion; unstructured `sparsegpt`: reconstruction re-chooses the mask */
  criterion: CriterionName;
  /** global scope: no layer (unstructured) or channel group (structured) loses more than this fraction; 1 = no cap */
  maxLayerSparsity: number;
  /** release gates: a budget whose interval straddles its limit fails instead of warning */
  strict: boolean;
  executionProvider: ExecutionProvider;
  /** built-in synthetic shifts evaluated like --shift sets, e.g. ["gaussian-noise:2", "blur:1"] */
  corruptions: string[];
  /** limits set in the file only; defaults are applied by `resolveBudgets` so their source is recorded */
  budgets: Partial<Record<BudgetName, number>>;
  /** seconds one model's run may take; past it the run stops and the ledger says where (unset: no limit) */
  timeBudget?: number;
  /** oneshot: prune to the target at once; gradual: cubic schedule of steps, recovering after each */
  schedule: ScheduleKind;
  /** gradual: number of pruning steps */
  scheduleSteps: number;
  /** gradual: stop after this many consecutive steps whose quality fell beyond the cliff threshold */
  schedulePatience: number;
  /** oneshot unstructured: prune-and-recover rounds on a cubic schedule ending at the target (1 = one shot; 0 = auto) */
  recoveryRounds: number;
  /** recovery rounds under global scope: also run them with sensitivity allocation, keep the lower calibration NLL */
  roundsCompareSensitivity: boolean;
  /** the model output to judge, by name; needed when the model has several (unset: its only output) */
  output?: string;
}

export const DEFAULT_CONFIG: Readonly<Config> = Object.freeze({
  sparsity: 0.5,
  method: 'unstructured',
  recovery: 'auto',
  scope: 'auto',
  exclude: [],
  keepFirstLayer: false,
  keepLastLayer: false,
  bakeTemperature: false,
  recoveryCommand: '',
  recoveryTimeBudget: 240,
  batchSizes: [1, 32],
  latency: { warmup: 10, runs: 30, threads: 0, targetRelCi: 0, maxSeconds: 60, repeat: 1 },
  evalBatchSize: 256,
  confidence: 0.95,
  roundTo: 1,
  criterion: 'l1',
  maxLayerSparsity: 1,
  strict: false,
  executionProvider: 'cpu',
  corruptions: [],
  budgets: {},
  schedule: 'oneshot',
  scheduleSteps: 4,
  schedulePatience: 1,
  // auto: 4 rounds for unstructured pruning to 60% or more with auto recovery and a labelled calib (src/recover/rounds.ts)
  recoveryRounds: 0,
  roundsCompareSensitivity: false,
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
      properties: {
        warmup: wholeNumber(0),
        runs: wholeNumber(1),
        threads: wholeNumber(0),
        'target-rel-ci': { type: 'number', minimum: 0, exclusiveMaximum: 1, description: 'a fraction from 0 (off) to below 1 like 0.02' },
        'max-seconds': { type: 'number', minimum: 0, description: 'seconds, 0 or more (0 = no cap)' },
        repeat: wholeNumber(1),
      },
      description: 'a mapping like { warmup: 10, runs: 30, threads: 0, target-rel-ci: 0.02, max-seconds: 60 }',
    },
    'eval-batch-size': wholeNumber(1),
    confidence: {
      type: 'number',
      exclusiveMinimum: 0,
      exclusiveMaximum: 1,
      description: 'a number between 0 and 1 like 0.95',
    },
    'round-to': wholeNumber(1),
    criterion: oneOf(CRITERIA),
    'max-layer-sparsity': { type: 'number', exclusiveMinimum: 0, maximum: 1, description: 'a fraction above 0 up to 1 like 0.9 (1 = no cap)' },
    strict: boolean,
    'execution-provider': oneOf(EXECUTION_PROVIDERS),
    corruptions: {
      type: 'array',
      uniqueItems: true,
      items: { type: 'string', pattern: `^(${CORRUPTIONS.join('|')}):[1-5]$`, description: `KIND:SEVERITY with KIND one of ${CORRUPTIONS.join(', ')} and SEVERITY 1-5` },
      description: 'a list like [gaussian-noise:2, blur:1]',
    },
    'time-budget': { type: 'number', exclusiveMinimum: 0, description: 'a number of seconds above 0 like 600' },
    schedule: oneOf(SCHEDULES),
    'schedule-steps': wholeNumber(1),
    'schedule-patience': wholeNumber(1),
    'recovery-rounds': { type: 'integer', minimum: 0, description: 'a whole number of rounds (1 = one shot, 0 = auto)' },
    'rounds-compare-sensitivity': boolean,
    output: { type: 'string', minLength: 1, description: "an output name of the model like 'logits'" },
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
