import * as z from 'zod/mini';
import { BUDGETS, BUDGET_NAMES, budgetJsonSchema, readBudget, type BudgetLimit, type BudgetName, type PerOutputBudget } from './budgets.js';
import { must, sentence } from './issues.js';
import { commaList, number, oneOf, onOff, repeatedList, text, wholeNumber, type Kind } from './kinds.js';

/**
 * The one declaration of prune-guard's settings. Everything else about the config is derived from
 * `SETTINGS`: the `Config` type and `DEFAULT_CONFIG` (here), the JSON Schema of `.prune-guard.yml`
 * (`configJsonSchema()`, committed as schema/config.schema.json), the validation messages
 * (src/config/validate.ts), the CLI's flags and the action's inputs (src/config/sources.ts). Rules that
 * tie settings to each other and to the run's inputs are in src/config/rules.ts.
 */

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

/** built-in synthetic shifts (src/measure/corruptions.ts): image kinds perturb pixels, tabular kinds perturb features */
export const IMAGE_CORRUPTIONS = ['gaussian-noise', 'contrast', 'brightness', 'blur'] as const;
export const TABULAR_CORRUPTIONS = ['feature-noise', 'feature-dropout'] as const;
export const CORRUPTIONS = [...IMAGE_CORRUPTIONS, ...TABULAR_CORRUPTIONS] as const;
export type CorruptionKind = (typeof CORRUPTIONS)[number];

/** pruning schedules (src/prune/schedule.ts): all at once, or the cubic gradual schedule */
export const SCHEDULES = ['oneshot', 'gradual'] as const;
export type ScheduleKind = (typeof SCHEDULES)[number];

/** post-training quantization after pruning and recovery (src/quantize/): none, static INT8 QDQ, or dynamic INT8 */
export const QUANTIZE_MODES = ['none', 'int8', 'dynamic'] as const;
export type QuantizeMode = (typeof QUANTIZE_MODES)[number];
/** activation range calibrators of static INT8 (src/quantize/calibrate.ts) */
export const QUANTIZE_CALIBRATIONS = ['minmax', 'percentile', 'entropy'] as const;
export type QuantizeCalibration = (typeof QUANTIZE_CALIBRATIONS)[number];

/** what a run judges quality by: class labels, or each output's fidelity to the dense model; `auto` decides from the data and the model */
export const TASKS = ['auto', 'classification', 'fidelity'] as const;
export type TaskSetting = (typeof TASKS)[number];

export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'auto'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

/** Largest batch size accepted anywhere: beyond it a batch is a typo, and would exhaust memory before it measured anything. */
export const MAX_BATCH = 65536;

/** the commands whose flags a setting has */
export type Command = 'run' | 'compare' | 'selftest';
const RUN: readonly Command[] = ['run'];
const MEASURE: readonly Command[] = ['run', 'compare', 'selftest'];

export interface FlagOptions {
  /** the value's name in --help, e.g. `<fraction>`; none for a switch */
  value?: string;
  /** when the flag is not `--<key>` */
  name?: string;
  commands: readonly Command[];
  /** list settings: flags add to the file's list (`append`) or to its set (`union`) */
  repeat?: 'append' | 'union';
}

interface SettingSpec<T> {
  /** what the setting does: --help, the JSON Schema's description and action.yml */
  help: string;
  flag?: FlagOptions;
  /** the action input that sets it */
  input?: string;
  default?: T;
}

/** One setting, as the file, the flags and the action read it. */
export interface Setting extends SettingSpec<unknown> {
  kind: Kind<unknown>;
  /** the value as the file holds it, with its default */
  schema: z.ZodMiniType;
}

/** A block of settings under one key (`latency:`). */
export interface SettingGroup {
  help: string;
  settings: Record<string, Setting>;
  schema: z.ZodMiniType;
}

function setting<T>(kind: Kind<T>, value: NonNullable<T>, spec: SettingSpec<T>) {
  return { ...spec, kind: kind as Kind<unknown>, default: value, schema: z._default(kind.schema, value as never).check(z.describe(spec.help)) };
}

/** A setting with no default: absent means off. */
function optionalSetting<T>(kind: Kind<T>, spec: SettingSpec<T>) {
  return { ...spec, kind: kind as Kind<unknown>, schema: z.optional(kind.schema).check(z.describe(spec.help)) };
}

/**
 * A mapping that names its keys when it meets an unknown one: zod reports unknown keys without the
 * valid ones, so the message carries them (src/config/validate.ts turns it into a suggestion).
 */
export const VALID_KEYS = 'valid keys: ';
function mapping<S extends z.core.$ZodLooseShape>(shape: S, expect: string) {
  const keys = Object.keys(shape).join(', ');
  return z.strictObject(shape, { error: (issue) => (issue.code === 'unrecognized_keys' ? `${VALID_KEYS}${keys}` : expect) });
}

type SchemaShape<D> = { [K in keyof D]: D[K] extends { schema: infer S } ? S : never };
function shapeOf<D extends Record<string, { schema: z.ZodMiniType }>>(settings: D): SchemaShape<D> {
  return Object.fromEntries(Object.entries(settings).map(([key, s]) => [key, s.schema])) as SchemaShape<D>;
}

/** A block of settings under one key (`latency:`); each keeps its default when the block sets others. */
function group<D extends Record<string, Setting>>(settings: D, expect: string, help: string) {
  return { help, settings, schema: z.prefault(mapping(shapeOf(settings), expect), {} as never).check(z.describe(help)) };
}

const NM = /^[1-9][0-9]*:[1-9][0-9]*$/;
const isNM = (method: string): boolean => NM.test(method);

const METHOD_EXPECT = `one of ${PRUNE_METHODS.join(', ')} or an N:M pattern like "2:4"`;
const method: Kind<PruneMethod> = {
  schema: z
    .union([z.enum(PRUNE_METHODS, must(METHOD_EXPECT)), z.string(must(METHOD_EXPECT)).check(z.regex(NM))], must(METHOD_EXPECT))
    .check((ctx) => {
      const [n, m] = ctx.value.split(':').map(Number);
      if (isNM(ctx.value) && n >= m) ctx.issues.push(sentence('said', 'N:M must have N smaller than M, like "2:4"', ctx.value));
    }) as unknown as z.ZodMiniType<PruneMethod>,
  expect: METHOD_EXPECT,
  read: (t) => t,
};

const corruption = text(`KIND:SEVERITY with KIND one of ${CORRUPTIONS.join(', ')} and SEVERITY 1-5`, z.regex(new RegExp(`^(${CORRUPTIONS.join('|')}):[1-5]$`)));
const glob = text('a non-empty glob', z.minLength(1));
const batchSize = wholeNumber(1, MAX_BATCH);

/** A budget limit: a number or text with a unit, read by `readBudget` (which also refuses misreadable bare numbers). */
function limitOf(name: BudgetName) {
  const spec = BUDGETS[name];
  const read = z.transform((value: number | string, ctx): BudgetLimit => {
    const reading = readBudget(name, value);
    if (reading.ok) return { limit: reading.limit, written: reading.written };
    ctx.issues.push(reading.message ? sentence('plain', reading.message, value) : { code: 'custom', message: spec.expect, input: value });
    return z.NEVER;
  });
  return z.pipe(z.union([z.number(), z.string()], must(spec.expect)), read);
}

function budgetLimit(name: BudgetName) {
  return z.optional(limitOf(name)).check(z.meta({ description: BUDGETS[name].meaning, ...budgetJsonSchema(name) }));
}

const OUTPUT_LIMIT_EXPECT = (name: BudgetName) => `${BUDGETS[name].expect}, { output: NAME, limit: VALUE }, or a list of these`;

/**
 * A budget judged per output: a limit for every output, `{ output: NAME, limit: VALUE }` for one, or a
 * list of these; read into a list of limits, each naming its output or none.
 */
function outputBudgetLimits(name: BudgetName) {
  const spec = BUDGETS[name];
  const limit = limitOf(name);
  const selected = z.pipe(
    mapping({ output: z.string().check(z.minLength(1)), limit }, OUTPUT_LIMIT_EXPECT(name)),
    z.transform((o): BudgetLimit => ({ ...o.limit, output: o.output })),
  );
  const one = z.union([limit, selected], must(OUTPUT_LIMIT_EXPECT(name)));
  const many = z.union([z.pipe(one, z.transform((l: BudgetLimit) => [l])), z.array(one).check(z.minLength(1, must(OUTPUT_LIMIT_EXPECT(name))))], must(OUTPUT_LIMIT_EXPECT(name)));
  return z.optional(many).check(z.meta({ description: spec.meaning, ...budgetJsonSchema(name) }));
}

type BudgetShape = { [N in BudgetName]: N extends PerOutputBudget ? ReturnType<typeof outputBudgetLimits> : ReturnType<typeof budgetLimit> };

const BUDGETS_HELP = 'budget limits by name (NAME=VALUE for --budget and for each line of the action input), with units: 0.5pt or 0.5% (points), 5ms, 2MB or 2MiB, 1.3x, 10% (a relative change)';

/** A speedup above 1: 2 in the file, 2 or 2x on the command line. */
const SPEEDUP_EXPECT = 'a speedup above 1 like 2 (2x on the command line)';
const speedup: Kind<number> = {
  schema: z.number(must(SPEEDUP_EXPECT)).check(z.gt(1)),
  expect: SPEEDUP_EXPECT,
  read: (t) => (/^[0-9]*\.?[0-9]+x$/i.test(t) ? Number(t.slice(0, -1)) : /^[0-9]*\.?[0-9]+$/.test(t) ? Number(t) : t),
};

/** Every setting, in the order the JSON Schema and --help list them. Keys are as written in the file. */
export const SETTINGS = {
  sparsity: setting(number('a fraction from 0 to below 1 like 0.5', z.minimum(0), z.lt(1)), 0.5, {
    help: 'target fraction of prunable weights set to zero (structured: of prunable channels removed)',
    flag: { value: '<fraction>', commands: RUN },
    input: 'target-sparsity',
  }),
  method: setting(method, 'unstructured', {
    help: 'pruning method: unstructured, structured, hybrid or an N:M pattern such as 2:4',
    flag: { value: '<method>', commands: RUN },
    input: 'method',
  }),
  task: setting(oneOf(TASKS), 'auto', {
    help:
      "what quality is judged by: classification (the labels 'y': accuracy, per-class accuracy, calibration) or fidelity (every output against the dense model's on the same inputs: " +
      'cosine similarity, relative L2 error, max absolute error, top-1/top-5 agreement for class-like outputs); auto: fidelity when the data has no labels or the model is not a single-output classifier, else classification',
    flag: { value: '<task>', commands: RUN },
    input: 'task',
  }),
  recovery: setting(oneOf(RECOVERIES), 'auto', {
    help: 'accuracy recovery after pruning; auto: reconstruction, BatchNorm re-estimation and distillation on the calibration set, each kept only if it helps there',
    flag: { value: '<recovery>', commands: RUN },
    input: 'recovery',
  }),
  scope: setting(oneOf(SCOPES), 'auto', {
    help:
      "how the target is spread over layers: global (one magnitude threshold), layer (each layer alike), sensitivity (per-layer ratios from each layer's measured calibration-loss curve; needs calibration data), " +
      'sensitivity-macs (structured: channels removed where that loss per MAC saved is smallest), auto (sensitivity-macs for structured and sensitivity for unstructured oneshot with a labelled calibration set, else global)',
    flag: { value: '<scope>', commands: RUN },
  }),
  exclude: setting(repeatedList(glob, 'a list of globs like ["*.bias"]'), [], {
    help: 'globs of node or initializer names never pruned; flags add to the file\'s list',
    flag: { value: '<glob>', commands: RUN, repeat: 'append' },
  }),
  'keep-first-layer': setting(onOff(), false, { help: 'do not prune the first prunable layer', flag: { commands: RUN } }),
  'keep-last-layer': setting(onOff(), false, { help: 'do not prune the last prunable layer', flag: { commands: RUN } }),
  'bake-temperature': setting(onOff(), false, {
    help: "divide the shipped model's logits by the temperature fitted on the calibration set (needs labels)",
    flag: { commands: RUN },
  }),
  'recovery-work': setting(number('a number of billions of multiply-accumulates (0 = no cap)', z.minimum(0)), 5000, {
    help: 'most work recovery and scope auto\'s sensitivity curves may do, in billions of multiply-accumulates (GMAC) of passes over the calibration set; within it the allowance is sized from the model (400 passes), so the same layers, samples and epochs are computed on any machine (0 = no cap)',
    flag: { value: '<gmac>', commands: RUN },
  }),
  'recovery-time-budget': setting(number('a number of seconds (0 = no limit)', z.minimum(0)), 7200, {
    help: 'safety stop: seconds after which recovery stops early even within its work allowance; the ledger then says the run was cut short and the verdict is at least warn (0 = no limit)',
    flag: { value: '<seconds>', commands: RUN },
  }),
  'recovery-command': setting(text('a shell command like "python finetune.py"'), '', {
    help: 'shell command run by recovery: command (your own fine-tuning); gets PRUNE_GUARD_MODEL_IN, _MODEL_OUT, _MASKS, _CALIB, _DATA (docs/recovery.md)',
    flag: { value: '<cmd>', commands: RUN },
    input: 'recovery-command',
  }),
  'batch-sizes': setting(
    commaList(batchSize, `a non-empty list of distinct batch sizes from 1 to ${MAX_BATCH} like [1, 32]`, `distinct batch sizes from 1 to ${MAX_BATCH} separated by commas, like 1,32`, { nonEmpty: true, unique: true }),
    [1, 32],
    {
      help: 'latency batch sizes; the first is the primary one, shown in the headline and judged',
      flag: { value: '<list>', commands: MEASURE },
      input: 'batch-sizes',
    },
  ),
  latency: group(
    {
      warmup: setting(wholeNumber(0), 10, { help: 'untimed latency runs per model and batch size', flag: { value: '<n>', commands: MEASURE }, input: 'warmup' }),
      runs: setting(wholeNumber(1), 30, { help: 'timed latency runs per model and batch size (at least, with the adaptive stop)', flag: { value: '<n>', commands: MEASURE }, input: 'runs' }),
      threads: setting(wholeNumber(0), 0, { help: 'onnxruntime intra-op threads (0 = all cores; at most 4 per core)', flag: { value: '<n>', commands: MEASURE } }),
      'target-rel-ci': setting(number('a fraction from 0 (off) to below 1 like 0.02', z.minimum(0), z.lt(1)), 0, {
        help: 'adaptive latency stop: sample until the speedup interval is within ± this fraction (0 = a fixed number of runs)',
        flag: { value: '<fraction>', commands: MEASURE },
      }),
      'max-seconds': setting(number('seconds, 0 or more (0 = no cap)', z.minimum(0)), 30, {
        help: 'time cap of adaptive latency sampling in seconds: the decisions on latency-regression and min-speedup, or the --target-rel-ci stop over all batch sizes (0 = none)',
        flag: { value: '<s>', commands: MEASURE },
      }),
      'max-runs': setting(wholeNumber(40), 2000, {
        help: 'timed latency rounds at most while sampling until the latency-regression or min-speedup interval clears its limit',
        flag: { value: '<n>', commands: MEASURE },
      }),
      repeat: setting(wholeNumber(1), 1, {
        help: 'each timed latency sample is the fastest of this many back-to-back runs (filters preemption on shared runners)',
        flag: { value: '<k>', commands: MEASURE },
      }),
    },
    'a mapping like { warmup: 10, runs: 30, threads: 0, target-rel-ci: 0.02, max-seconds: 30, max-runs: 2000 }',
    'how latency is measured',
  ),
  'eval-batch-size': setting(wholeNumber(1, MAX_BATCH), 256, { help: 'batch size of accuracy evaluation', flag: { value: '<n>', commands: MEASURE } }),
  confidence: setting(number('a number between 0 and 1 like 0.95', z.gt(0), z.lt(1)), 0.95, {
    help: 'confidence level of every interval',
    flag: { value: '<level>', commands: MEASURE },
  }),
  'round-to': setting(wholeNumber(0), 0, {
    help: 'structured: kept channel counts are multiples of this (1 = no rounding); 0 = the multiples measured to run fast on this machine (each layer kind timed at many widths once, cached per machine and onnxruntime)',
    flag: { value: '<n>', commands: RUN },
  }),
  'target-speedup': optionalSetting(speedup, {
    help: 'structured: allocate channels for this measured speedup over dense at the first batch size (2 or 2x), from a per-layer latency table, corrected by measurement up to 3 times',
    flag: { value: '<x>', commands: RUN },
  }),
  'target-latency-ms': optionalSetting(number('milliseconds above 0 like 5', z.gt(0)), {
    help: 'structured: allocate channels for this measured p50 latency in milliseconds at the first batch size, like target-speedup',
    flag: { value: '<ms>', commands: RUN },
  }),
  criterion: setting(oneOf(CRITERIA), 'l1', {
    help: 'structured: how channel importance is scored; unstructured: sparsegpt (reconstruction re-chooses which weights are zero)',
    flag: { value: '<name>', commands: RUN },
  }),
  'max-layer-sparsity': setting(number('a fraction above 0 up to 1 like 0.9 (1 = no cap)', z.gt(0), z.maximum(1)), 1, {
    help: 'global scope: no layer (structured: channel group) loses more than this fraction; the rest of the target goes to the others (1 = no cap)',
    flag: { value: '<fraction>', commands: RUN },
  }),
  strict: setting(onOff(), false, {
    help: 'release gate: a budget whose confidence interval straddles its limit fails instead of warning',
    flag: { commands: MEASURE },
  }),
  'execution-provider': setting(oneOf(EXECUTION_PROVIDERS), 'cpu', {
    help: 'where to measure: cpu, cuda (must be available: a CUDA-enabled onnxruntime-node) or auto (cuda, else cpu, noted in the ledger)',
    flag: { value: '<provider>', commands: MEASURE },
    input: 'execution-provider',
  }),
  corruptions: setting(repeatedList(corruption, 'a list like [gaussian-noise:2, blur:1]', { unique: true }), [], {
    help: 'built-in shifts of the evaluation set, KIND:SEVERITY: gaussian-noise, contrast, brightness, blur (images), feature-noise, feature-dropout (tabular), severity 1-5',
    flag: { name: '--corruption', value: '<kind:severity>', commands: MEASURE, repeat: 'union' },
  }),
  'time-budget': optionalSetting(number('a number of seconds above 0 like 600', z.gt(0)), {
    help: "seconds one model's run may take; past it the run stops and writes a fail ledger saying where (absent: no limit)",
    flag: { value: '<seconds>', commands: RUN },
  }),
  schedule: setting(oneOf(SCHEDULES), 'oneshot', {
    help: 'oneshot: prune to the target at once; gradual: a cubic schedule of schedule-steps steps, recovering and measuring after each, shipping the best step that meets every budget',
    flag: { value: '<kind>', commands: RUN },
  }),
  'schedule-steps': setting(wholeNumber(1), 4, { help: 'gradual: number of pruning steps', flag: { value: '<n>', commands: RUN } }),
  'schedule-patience': setting(wholeNumber(1), 1, {
    help: 'gradual: stop after this many consecutive steps whose quality fell beyond the cliff threshold',
    flag: { value: '<n>', commands: RUN },
  }),
  'recovery-rounds': setting(wholeNumber(0, undefined, 'a whole number of rounds (1 = one shot, 0 = auto)'), 0, {
    help: 'oneshot unstructured: prune and recover in this many rounds of rising sparsity (cubic) ending at the target, shipping the last (1 = one shot; 0 = auto: 4 rounds at 60% or more with recovery auto and a labelled calibration set)',
    flag: { value: '<n>', commands: RUN },
  }),
  'rounds-compare-sensitivity': setting(onOff(), false, {
    help: 'with recovery rounds and global scope: also run the rounds with sensitivity-allocated layer ratios and ship whichever ends with the lower calibration NLL (twice the rounds)',
    flag: { commands: RUN },
  }),
  quantize: setting(oneOf(QUANTIZE_MODES), 'none', {
    help:
      'after pruning and recovery (or alone with sparsity 0), quantize the last float step: int8 = static QDQ calibrated on the calibration set (uint8 or int8 activations, per-channel int8 weights, layers kept float, as measurement says); ' +
      'dynamic = MatMul weights int8, activations quantized per batch at run time (docs/methods.md#int8-quantization)',
    flag: { value: '<mode>', commands: RUN },
    input: 'quantize',
  }),
  'quantize-calibration': setting(oneOf(QUANTIZE_CALIBRATIONS), 'minmax', {
    help: 'how quantize int8 sets activation ranges on the calibration set: minmax, percentile or entropy',
    flag: { value: '<method>', commands: RUN },
  }),
  'quantize-exclude': setting(repeatedList(glob, 'a list of node-name globs like ["/stem/*"]'), [], {
    help: "globs of node names quantize keeps in float; flags add to the file's list",
    flag: { value: '<glob>', commands: RUN, repeat: 'append' },
  }),
  output: optionalSetting(text("an output name of the model like 'logits'", z.minLength(1)), {
    help: 'the model output to judge (needed when the model has several): [batch, classes] logits, probabilities or log-probabilities, or a sigmoid [batch] / [batch, labels] (absent: its only output)',
    flag: { value: '<name>', commands: ['run', 'compare'] },
  }),
  budgets: {
    help: BUDGETS_HELP,
    /** flags and the input are NAME=VALUE lines (src/config/budgets.ts), kept apart from the file's limits so the ledger says where each came from */
    flag: { name: '--budget', value: '<name=value>', commands: MEASURE },
    input: 'budgets',
    schema: z
      .prefault(
        mapping(
          Object.fromEntries(BUDGET_NAMES.map((name) => [name, BUDGETS[name].perOutput ? outputBudgetLimits(name) : budgetLimit(name)])) as BudgetShape,
          'a mapping of budget names to limits like { accuracy-drop: 0.5pt }',
        ),
        {},
      )
      .check(z.describe(BUDGETS_HELP)),
  },
};

/** `.prune-guard.yml` as written: kebab-case keys, every default filled in. */
export const CONFIG_FILE = mapping(shapeOf(SETTINGS), "a mapping of settings like 'sparsity: 0.5'");
type FileConfig = z.output<typeof CONFIG_FILE>;

type Camel<S extends string> = S extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<Camel<Tail>>}` : S;
/** file keys -> field names, one level down into `latency`; budget names stay as written */
type Fields<T> = { [K in keyof T as Camel<K & string>]: K extends 'budgets' ? T[K] : T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? Fields<T[K]> : T[K] };

/** `.prune-guard.yml` after validation; every field has a default but `timeBudget`. */
export type Config = Fields<FileConfig>;
export type LatencyConfig = Config['latency'];

export const camel = (key: string): string => key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
export const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** A parsed file -> Config: the same values under field names. */
export function fromFile(file: FileConfig): Config {
  const renamed = (o: object, deep: boolean): Record<string, unknown> =>
    Object.fromEntries(Object.entries(o).map(([k, v]) => [camel(k), deep && k === 'latency' ? renamed(v as object, false) : v]));
  return structuredClone(renamed(file, true)) as Config;
}

/** Config -> the file's form, for validating a config assembled from several sources. */
export function toFile(config: Config): Record<string, unknown> {
  const renamed = (o: object, deep: boolean): Record<string, unknown> =>
    Object.fromEntries(
      Object.entries(o).map(([k, v]) => [kebab(k), deep && k === 'latency' ? renamed(v as object, false) : deep && k === 'budgets' ? writtenLimits(v as Config['budgets']) : v]),
    );
  return renamed(config, true);
}

const writtenLimit = (b: BudgetLimit): string | { output: string; limit: string } => (b.output === undefined ? b.written : { output: b.output, limit: b.written });
const writtenLimits = (budgets: Config['budgets']): Record<string, unknown> =>
  Object.fromEntries(Object.entries(budgets).map(([name, b]) => [name, Array.isArray(b) ? b.map(writtenLimit) : writtenLimit(b!)]));

export const DEFAULT_CONFIG: Readonly<Config> = Object.freeze(fromFile(CONFIG_FILE.parse({})));

/** JSON Schema (2020-12) of `.prune-guard.yml`, derived from `SETTINGS`; schema/config.schema.json is this. */
export function configJsonSchema(): { title: string; properties: Record<string, Record<string, unknown>>; [keyword: string]: unknown } {
  return { title: '.prune-guard.yml', ...z.toJSONSchema(CONFIG_FILE, { io: 'input', target: 'draft-2020-12' }) } as ReturnType<typeof configJsonSchema>;
}
