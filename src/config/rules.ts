import * as os from 'node:os';
import { UserError } from '../errors.js';
import { PRUNE_METHODS, type ConcreteScope, type Config } from './schema.js';

/**
 * Rules that tie settings to each other and to the run's inputs: what the schema cannot say about one
 * value alone. They are evaluated together, once, before a run prunes or writes anything; the first
 * broken rule is the run's one-line error.
 */

/** The calibration set a run was given: none, without labels (`y`), or with them. */
export type CalibFact = 'none' | 'unlabelled' | 'labelled';

/** What the rules know besides the config. */
export interface RunFacts {
  calib: CalibFact;
  /** this machine's cores (default: os.availableParallelism()) */
  cores?: number;
}

/** The config as pruning will use it: `scope: auto` already resolved (src/prune/resolveScope.ts). */
export type ResolvedConfig = Omit<Config, 'scope'> & { scope: ConcreteScope };

/**
 * Sensitivity allocation prunes no layer beyond this fraction (src/prune/sensitivity/allocateSparsity.ts),
 * so targets above it cannot be met by it.
 */
export const SENSITIVITY_CAP = 0.95;

/** intra-op threads above this many per core only queue behind each other on a shared runner */
export const THREADS_PER_CORE = 4;

/** `recovery` values that need a calibration set, and what for. */
const NEEDS_CALIB: Partial<Record<Config['recovery'], string>> = {
  reconstruct: 'the layer inputs reconstruction refits to',
  distill: 'the samples distillation trains on',
};

const isNM = (method: string): boolean => !(PRUNE_METHODS as readonly string[]).includes(method);
const isSensitivity = (scope: ConcreteScope): boolean => scope === 'sensitivity' || scope === 'sensitivity-macs';

type Facts = Required<RunFacts>;
/** A broken rule's message, or undefined when the rule holds. */
type Rule<C> = (config: C, facts: Facts) => string | undefined;

/** Rules of every command that measures: compare and selftest as well as run. */
const MEASURE_RULES: readonly Rule<Config>[] = [
  (c, f) => {
    const most = THREADS_PER_CORE * f.cores;
    if (c.latency.threads <= most) return undefined;
    return `--threads ${c.latency.threads}: more than ${THREADS_PER_CORE} per core on this machine's ${f.cores} cores; use at most ${most}, or 0 for all cores`;
  },
];

/** recovery: what each recovery needs from the inputs */
const RECOVERY_RULES: readonly Rule<ResolvedConfig>[] = [
  (c, f) => {
    const why = NEEDS_CALIB[c.recovery];
    if (!why || f.calib !== 'none') return undefined;
    return `--recovery ${c.recovery}: needs a calibration set for ${why}; pass --calib calib.npz (a few hundred training-like samples, with y to judge steps)`;
  },
  (c) => (c.recovery === 'command' && !c.recoveryCommand ? `--recovery command: no command given; pass --recovery-command "python finetune.py" (or recovery-command in the config file)` : undefined),
  (c, f) =>
    c.bakeTemperature && f.calib !== 'labelled' ? `--bake-temperature: needs a labelled calibration set to fit the temperature on; pass --calib calib.npz with x and y` : undefined,
];

/** scope sensitivity and sensitivity-macs: measured on calibration data, for the methods they allocate */
const SENSITIVITY_RULES: readonly Rule<ResolvedConfig>[] = [
  (c, f) =>
    isSensitivity(c.scope) && f.calib === 'none'
      ? `--scope ${c.scope}: needs a calibration set to measure each layer on; pass --calib calib.npz (labels optional) or use --scope global`
      : undefined,
  (c) =>
    c.scope === 'sensitivity-macs' && c.method !== 'structured'
      ? `--scope ${c.scope}: ranks channel groups by the MACs their removal saves, so it needs --method structured, not ${c.method}; use --scope sensitivity or global`
      : undefined,
  (c) =>
    isSensitivity(c.scope) && c.method !== 'unstructured' && c.method !== 'structured'
      ? `--scope ${c.scope}: works with --method unstructured or structured, not ${c.method}; use one of those or --scope global`
      : undefined,
  (c) =>
    isSensitivity(c.scope) && c.sparsity > SENSITIVITY_CAP
      ? `--sparsity ${c.sparsity}: --scope ${c.scope} prunes no layer beyond ${SENSITIVITY_CAP * 100}%, so the target must be at most ${SENSITIVITY_CAP}; lower --sparsity or use --scope global`
      : undefined,
];

/** recovery rounds: an explicit count above 1 only where rounds can run (0 = auto falls back to one shot) */
const ROUNDS_RULES: readonly Rule<ResolvedConfig>[] = [
  (c) =>
    c.roundsCompareSensitivity && c.scope !== 'global'
      ? `--rounds-compare-sensitivity: compares global with sensitivity allocation, but --scope is ${c.scope}; drop --scope or the flag`
      : undefined,
  (c) =>
    c.roundsCompareSensitivity && c.sparsity > SENSITIVITY_CAP
      ? `--rounds-compare-sensitivity: sensitivity allocation prunes no layer beyond ${SENSITIVITY_CAP * 100}%, so --sparsity ${c.sparsity} cannot be compared; lower --sparsity to ${SENSITIVITY_CAP} or drop the flag`
      : undefined,
  (c, f) =>
    c.roundsCompareSensitivity && f.calib !== 'labelled'
      ? '--rounds-compare-sensitivity: picks by calibration NLL, so it needs a labelled calibration set; pass --calib calib.npz with x and y'
      : undefined,
  (c) =>
    c.recoveryRounds > 1 && c.method !== 'unstructured'
      ? `--recovery-rounds ${c.recoveryRounds}: rounds prune unstructured weights again after each recovery, not --method ${c.method}; use --method unstructured or --recovery-rounds 1`
      : undefined,
  (c) => (c.recoveryRounds > 1 && c.schedule !== 'oneshot' ? `--recovery-rounds ${c.recoveryRounds}: --schedule gradual already recovers after each step; use one of them` : undefined),
  (c) =>
    c.recoveryRounds > 1 && c.maxLayerSparsity < 1
      ? `--recovery-rounds ${c.recoveryRounds}: rounds prune by one global threshold without a per-layer cap; drop --max-layer-sparsity or use --recovery-rounds 1`
      : undefined,
  (c) =>
    c.recoveryRounds > 1 && c.criterion === 'sparsegpt'
      ? `--recovery-rounds ${c.recoveryRounds}: --criterion sparsegpt re-chooses zeros at each reconstruction, so a later round would revive earlier zeros; use --criterion l1`
      : undefined,
  (c, f) =>
    c.recoveryRounds > 1 && (f.calib === 'none' || !['auto', 'reconstruct', 'distill'].includes(c.recovery))
      ? `--recovery-rounds ${c.recoveryRounds}: each round recovers on the calibration set; pass --calib calib.npz and --recovery auto, reconstruct or distill`
      : undefined,
];

/** schedule gradual: what a schedule of rising sparsity can do */
const SCHEDULE_RULES: readonly Rule<ResolvedConfig>[] = [
  (c) =>
    c.schedule === 'gradual' && isNM(c.method)
      ? `--schedule gradual: --method ${c.method} has one fixed sparsity (1 - N/M), so there is nothing to schedule; use --schedule oneshot`
      : undefined,
  // each step's reconstruction moves zeros, which would revive zeros of the step before
  (c) =>
    c.schedule === 'gradual' && c.criterion === 'sparsegpt' && c.method === 'unstructured'
      ? `--schedule gradual: --criterion sparsegpt re-chooses the mask at every reconstruction, so a later step would revive earlier zeros; use --schedule oneshot with sparsegpt, or --criterion l1`
      : undefined,
  // structured steps cut channels of an already-smaller model, which the dense groups' curves no longer describe
  (c) =>
    c.schedule === 'gradual' && ((c.scope === 'sensitivity' && c.method !== 'unstructured') || c.scope === 'sensitivity-macs')
      ? `--schedule gradual: --scope sensitivity is scheduled for --method unstructured only (curves measured once on the dense model), and sensitivity-macs not at all; use --scope global or layer with gradual, or --schedule oneshot with sensitivity`
      : undefined,
];

/** criterion sparsegpt moves the mask during reconstruction: unstructured pruning with a recovery that reconstructs */
const SPARSEGPT_RULES: readonly Rule<ResolvedConfig>[] = [
  (c) =>
    c.criterion === 'sparsegpt' && c.method !== 'unstructured'
      ? `--criterion sparsegpt: re-chooses unstructured masks during reconstruction, not --method ${c.method}; use --method unstructured, or --criterion l1`
      : undefined,
  (c) =>
    c.criterion === 'sparsegpt' && c.recovery !== 'reconstruct' && c.recovery !== 'auto'
      ? `--criterion sparsegpt: the mask is chosen by the reconstruction step, but --recovery is ${c.recovery}; use --recovery reconstruct or auto`
      : undefined,
  (c, f) => (c.criterion === 'sparsegpt' && f.calib === 'none' ? '--criterion sparsegpt: needs calibration data to choose the mask on; pass --calib calib.npz' : undefined),
];

/** a per-layer cap below the target cannot be met, and other scopes ignore it: refused rather than silently differ */
const LAYER_CAP_RULES: readonly Rule<ResolvedConfig>[] = [
  (c) =>
    c.maxLayerSparsity < 1 && c.scope !== 'global'
      ? `--max-layer-sparsity: caps what one global threshold takes from a layer, but --scope ${c.scope} sets every layer's ratio itself; use --scope global or drop the cap`
      : undefined,
  (c) =>
    c.maxLayerSparsity < 1 && c.maxLayerSparsity < c.sparsity
      ? `--max-layer-sparsity ${c.maxLayerSparsity}: below --sparsity ${c.sparsity}, so no allocation reaches the target; raise it to at least ${c.sparsity}`
      : undefined,
];

/** quantize: static INT8 measures activation ranges on calibration data; one quantized model per run */
const QUANTIZE_RULES: readonly Rule<ResolvedConfig>[] = [
  (c, f) =>
    c.quantize === 'int8' && f.calib === 'none'
      ? '--quantize int8: needs calibration data to measure activation ranges; pass --calib calib.npz (512 samples are plenty), or use --quantize dynamic for MatMul layers'
      : undefined,
  (c) =>
    c.quantize !== 'none' && c.schedule === 'gradual'
      ? `--quantize ${c.quantize}: not combined with --schedule gradual; quantize the shipped step in a one-shot run (--schedule oneshot)`
      : undefined,
];

const targetFlag = (c: ResolvedConfig): string | undefined => (c.targetSpeedup !== undefined ? '--target-speedup' : c.targetLatencyMs !== undefined ? '--target-latency-ms' : undefined);

/** a latency target allocates one structured prune for speed */
const TARGET_RULES: readonly Rule<ResolvedConfig>[] = [
  (c) => (c.targetSpeedup !== undefined && c.targetLatencyMs !== undefined ? '--target-speedup and --target-latency-ms: give one latency target, not both' : undefined),
  (c) => {
    const flag = targetFlag(c);
    return flag && c.method !== 'structured'
      ? `${flag}: channels are allocated for speed only by --method structured (unstructured and N:M zeros do not run faster on CPU), not ${c.method}; add --method structured`
      : undefined;
  },
  (c) => {
    const flag = targetFlag(c);
    return flag && (c.schedule !== 'oneshot' || c.recoveryRounds > 1) ? `${flag}: allocates one structured prune; drop --schedule gradual and --recovery-rounds` : undefined;
  },
  (c) => {
    const flag = targetFlag(c);
    return flag && c.quantize !== 'none' ? `${flag}: is met by the structured prune alone; drop --quantize, or quantize in a run without a latency target` : undefined;
  },
];

/** Every rule of a pruning run, in the order their messages take precedence. */
const RUN_RULES: readonly Rule<ResolvedConfig>[] = [...MEASURE_RULES, ...RECOVERY_RULES, ...SENSITIVITY_RULES, ...ROUNDS_RULES, ...SCHEDULE_RULES, ...SPARSEGPT_RULES, ...LAYER_CAP_RULES, ...QUANTIZE_RULES, ...TARGET_RULES];

function broken<C>(rules: readonly Rule<C>[], config: C, facts: Omit<RunFacts, 'calib'> & { calib?: CalibFact }): string[] {
  const all: Facts = { calib: 'none', ...facts, cores: facts.cores ?? os.availableParallelism() };
  return rules.map((rule) => rule(config, all)).filter((m): m is string => m !== undefined);
}

/** Messages of every broken rule of a run, in precedence order. */
export function brokenRules(config: ResolvedConfig, facts: RunFacts): string[] {
  return broken(RUN_RULES, config, facts);
}

/** Refuses a pruning run whose settings cannot work together or with its inputs: one UserError, the first broken rule. */
export function checkConfig(config: ResolvedConfig, facts: RunFacts): void {
  const [first] = broken(RUN_RULES, config, facts);
  if (first !== undefined) throw new UserError(first);
}

/** The same for commands that only measure (compare, selftest): the rules that do not concern pruning. */
export function checkMeasureConfig(config: Config, facts: Omit<RunFacts, 'calib'> = {}): void {
  const [first] = broken(MEASURE_RULES, config, facts);
  if (first !== undefined) throw new UserError(first);
}
