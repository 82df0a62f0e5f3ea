import * as fs from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { loadConfig, mergeConfig } from './config/loadConfig.js';
import { DEFAULT_CONFIG, type Config } from './config/schema.js';
import { describe, isUserError, UserError } from './errors.js';
import { resolveBudgets } from './ledger/budgets.js';
import { parseBudgetFlag } from './config/budgets.js';
import { comparePipeline } from './pipeline/compare.js';
import { renderSelftest, selftest } from './pipeline/selftest.js';
import { installSignalCleanup } from './io/cleanup.js';
import { runGuarded } from './pipeline/guardedRun.js';
import { stderrProgress } from './io/progress.js';
import { VERSION } from './version.js';

/** Exit codes are part of the CLI contract. */
export const EXIT = { pass: 0, fail: 1, usage: 2, internal: 3 } as const;

const DEFAULT_CONFIG_FILE = '.prune-guard.yml';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function fraction(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`${flag} must be a number from 0 to below 1 (got '${v}')`);
    return n;
  };
}

function capFraction(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || n > 1) throw new InvalidArgumentError(`${flag} must be a number above 0 up to 1 (got '${v}')`);
    return n;
  };
}

function positiveInts(flag: string) {
  return (v: string): number[] => {
    const list = v.split(',').map((s) => Number(s.trim()));
    if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError(`${flag} must be positive integers separated by commas (got '${v}')`);
    return list;
  };
}

function count(flag: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${flag} must be an integer >= ${min} (got '${v}')`);
    return n;
  };
}

function seconds(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} must be a number of seconds above 0 (got '${v}')`);
    return n;
  };
}

function parseShift(text: string): { name: string; path: string } {
  const eq = text.indexOf('=');
  if (eq <= 0 || eq === text.length - 1) throw new UserError(`--shift ${text}: expected NAME=path.npz, e.g. --shift rotated=shift.npz`);
  return { name: text.slice(0, eq), path: text.slice(eq + 1) };
}

interface RunFlags {
  model?: string;
  data?: string;
  calib?: string;
  shift: string[];
  out: string;
  config?: string;
  budget: string[];
  sparsity?: number;
  method?: Config['method'];
  recovery?: Config['recovery'];
  scope?: Config['scope'];
  roundTo?: number;
  criterion?: Config['criterion'];
  maxLayerSparsity?: number;
  exclude: string[];
  keepFirstLayer?: boolean;
  keepLastLayer?: boolean;
  bakeTemperature?: boolean;
  recoveryCommand?: string;
  recoveryTimeBudget?: number;
  batchSizes?: number[];
  warmup?: number;
  runs?: number;
  threads?: number;
  evalBatchSize?: number;
  timeBudget?: number;
  quiet?: boolean;
  strict?: boolean;
  executionProvider?: Config['executionProvider'];
  confidence?: number;
  targetRelCi?: number;
  maxSeconds?: number;
  repeat?: number;
  corruption?: string[];
  schedule?: Config['schedule'];
  scheduleSteps?: number;
  schedulePatience?: number;
  recoveryRounds?: number;
  roundsCompareSensitivity?: boolean;
  output?: string;
}

/** The config file named by --config, else ./.prune-guard.yml when present, else the defaults. */
function resolveConfig(flags: RunFlags): Config {
  const file = flags.config ?? (fs.existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  const base = file ? loadConfig(file) : { ...DEFAULT_CONFIG };
  const latency = { ...base.latency };
  if (flags.warmup !== undefined) latency.warmup = flags.warmup;
  if (flags.runs !== undefined) latency.runs = flags.runs;
  if (flags.threads !== undefined) latency.threads = flags.threads;
  if (flags.targetRelCi !== undefined) latency.targetRelCi = flags.targetRelCi;
  if (flags.maxSeconds !== undefined) latency.maxSeconds = flags.maxSeconds;
  if (flags.repeat !== undefined) latency.repeat = flags.repeat;
  const overrides: Partial<Config> = { latency };
  if (flags.sparsity !== undefined) overrides.sparsity = flags.sparsity;
  if (flags.method !== undefined) overrides.method = flags.method;
  if (flags.recovery !== undefined) overrides.recovery = flags.recovery;
  if (flags.scope !== undefined) overrides.scope = flags.scope;
  if (flags.roundTo !== undefined) overrides.roundTo = flags.roundTo;
  if (flags.criterion !== undefined) overrides.criterion = flags.criterion;
  if (flags.maxLayerSparsity !== undefined) overrides.maxLayerSparsity = flags.maxLayerSparsity;
  if (flags.exclude.length) overrides.exclude = [...base.exclude, ...flags.exclude];
  if (flags.keepFirstLayer) overrides.keepFirstLayer = true;
  if (flags.keepLastLayer) overrides.keepLastLayer = true;
  if (flags.bakeTemperature) overrides.bakeTemperature = true;
  if (flags.recoveryCommand !== undefined) overrides.recoveryCommand = flags.recoveryCommand;
  if (flags.recoveryTimeBudget !== undefined) overrides.recoveryTimeBudget = flags.recoveryTimeBudget;
  if (flags.batchSizes) overrides.batchSizes = flags.batchSizes;
  if (flags.evalBatchSize !== undefined) overrides.evalBatchSize = flags.evalBatchSize;
  if (flags.strict) overrides.strict = true;
  if (flags.corruption?.length) overrides.corruptions = [...new Set([...base.corruptions, ...flags.corruption])];
  if (flags.executionProvider !== undefined) overrides.executionProvider = flags.executionProvider;
  if (flags.confidence !== undefined) overrides.confidence = flags.confidence;
  if (flags.timeBudget !== undefined) overrides.timeBudget = flags.timeBudget;
  if (flags.schedule !== undefined) overrides.schedule = flags.schedule;
  if (flags.scheduleSteps !== undefined) overrides.scheduleSteps = flags.scheduleSteps;
  if (flags.schedulePatience !== undefined) overrides.schedulePatience = flags.schedulePatience;
  if (flags.recoveryRounds !== undefined) overrides.recoveryRounds = flags.recoveryRounds;
  if (flags.roundsCompareSensitivity) overrides.roundsCompareSensitivity = true;
  if (flags.output !== undefined) overrides.output = flags.output;
  return mergeConfig(base, overrides);
}

function positiveNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${flag} must be a number of 0 or more (got '${v}')`);
    return n;
  };
}

/** Flags of the statistical gate, shared by run and compare. */
function addStatisticsOptions(cmd: Command): Command {
  return cmd
    .option('--strict', 'release gate: a budget whose confidence interval straddles its limit fails instead of warning')
    .addOption(new Option('--execution-provider <provider>', 'where to measure: cpu, cuda (must be available), auto (cuda else cpu, noted in the ledger)').choices(['cpu', 'cuda', 'auto']))
    .option('--confidence <level>', 'confidence level of every interval, e.g. 0.95', fraction('--confidence'))
    .option('--target-rel-ci <fraction>', 'adaptive latency stop: sample until the speedup interval is within ± this fraction (0 = fixed --runs)', fraction('--target-rel-ci'))
    .option('--max-seconds <s>', 'time cap of the adaptive latency stop, seconds (0 = none)', positiveNumber('--max-seconds'))
    .option('--corruption <kind:severity>', 'built-in shift of the evaluation set, repeatable: gaussian-noise, contrast, brightness, blur (images), feature-noise, feature-dropout (tabular), severity 1-5', collect, [])
    .option('--repeat <k>', 'each timed latency sample is the fastest of k back-to-back runs (filters preemption on shared runners)', count('--repeat', 1));
}

function buildProgram(io: { out: (s: string) => void; exit: (code: number) => void }): Command {
  const program = new Command('prune-guard')
    .description('Prune ONNX models and gate them on a budget ledger measured on the saved files')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: (s) => process.stderr.write(s) });

  program
    .command('run')
    .description('prune one model, measure dense and pruned on the same data, write ledger.json and ledger.md')
    .requiredOption('--model <path>', 'ONNX classifier to prune (never modified)')
    .requiredOption('--data <path>', 'labelled evaluation set (.npz with x and y, or one array per input name plus y)')
    .requiredOption('--out <dir>', 'output folder for <model>.pruned.onnx, ledger.json, ledger.md')
    .option('--calib <path>', 'calibration set (.npz), validated against the model')
    .option('--shift <name=path>', 'labelled distribution-shift set, repeatable', collect, [])
    .option('--output <name>', 'the model output to judge (needed when the model has several): [batch, classes] logits, probabilities or log-probabilities, or a sigmoid [batch] / [batch, labels]')
    .option('--config <path>', `config file (default: ./${DEFAULT_CONFIG_FILE} when present)`)
    .option('--budget <name=value>', 'budget limit, repeatable; overrides the config file', collect, [])
    .option('--sparsity <fraction>', 'target fraction of prunable weights set to zero (structured: of prunable channels removed)', fraction('--sparsity'))
    .option('--method <method>', 'pruning method: unstructured, structured, hybrid or an N:M pattern such as 2:4')
    .addOption(new Option('--recovery <recovery>', 'accuracy recovery after pruning (default auto: reconstruct + BatchNorm re-estimation + distillation with --calib, each kept only if it helps on the calibration set)').choices(['none', 'reconstruct', 'distill', 'auto', 'command']))
    .addOption(new Option('--scope <scope>', 'magnitude threshold over all layers together or per layer; sensitivity: per-layer ratios from each layer\'s measured calibration-loss curve (needs --calib); sensitivity-macs (structured): channels removed where that loss per MAC saved is smallest; auto (default): sensitivity-macs for structured oneshot with a labelled --calib, else global').choices(['global', 'layer', 'sensitivity', 'sensitivity-macs', 'auto']))
    .option('--round-to <n>', 'structured: keep channel counts at multiples of n (8 or 16 suit SIMD kernels)', count('--round-to', 1))
    .addOption(new Option('--criterion <name>', 'structured: channel importance; unstructured: sparsegpt (reconstruction re-chooses which weights are zero)').choices(['l1', 'l2', 'bn-scale', 'activation', 'sparsegpt']))
    .option('--max-layer-sparsity <fraction>', 'global scope: no layer (structured: channel group) loses more than this fraction; the rest of the target goes to the others (default 1: no cap)', capFraction('--max-layer-sparsity'))
    .option('--exclude <glob>', 'node or initializer names never pruned, repeatable', collect, [])
    .option('--keep-first-layer', 'do not prune the first prunable layer')
    .option('--keep-last-layer', 'do not prune the last prunable layer')
    .option('--recovery-command <cmd>', 'shell command for --recovery command; gets PRUNE_GUARD_MODEL_IN, _MODEL_OUT, _MASKS, _CALIB, _DATA (see README)')
    .option('--recovery-time-budget <seconds>', 'stop refitting further layers or distilling after this many seconds (0 = no limit; default 240)', count('--recovery-time-budget', 0))
    .option('--bake-temperature', 'divide the shipped model\'s logits by the temperature fitted on --calib (needs labels)')
    .option('--batch-sizes <list>', 'latency batch sizes, comma separated; the first is shown in the headline', positiveInts('--batch-sizes'))
    .option('--warmup <n>', 'untimed latency runs per model and batch size', count('--warmup', 0))
    .option('--runs <n>', 'timed latency runs per model and batch size', count('--runs', 1))
    .option('--threads <n>', 'onnxruntime intra-op threads (0 = all cores)', count('--threads', 0))
    .option('--eval-batch-size <n>', 'batch size for accuracy evaluation', count('--eval-batch-size', 1))
    .option('--time-budget <seconds>', 'stop a run that takes longer and write a fail ledger saying where it stopped', seconds('--time-budget'))
    .addOption(new Option('--schedule <kind>', 'oneshot: prune to --sparsity at once; gradual: cubic schedule of --schedule-steps steps, recovering and measuring after each, shipping the best step that meets every budget').choices(['oneshot', 'gradual']))
    .option('--schedule-steps <n>', 'gradual: number of pruning steps (default 4)', count('--schedule-steps', 1))
    .option('--schedule-patience <n>', 'gradual: stop after n consecutive steps whose quality fell beyond the cliff threshold (default 1)', count('--schedule-patience', 1))
    .option('--recovery-rounds <n>', 'oneshot unstructured: prune and recover in n rounds of rising sparsity (cubic) ending at --sparsity, shipping the last (1 = one shot; default 0 = auto: 4 rounds for unstructured at 60% or more with --recovery auto and a labelled --calib)', count('--recovery-rounds', 0))
    .option('--rounds-compare-sensitivity', 'with recovery rounds and --scope global: also run the rounds with sensitivity-allocated layer ratios and ship whichever ends with the lower calibration NLL (twice the rounds)')
    .option('--quiet', 'do not print the ledger');
  addStatisticsOptions(program.commands[program.commands.length - 1])
    .action(async (flags: RunFlags) => {
      const config = resolveConfig(flags);
      const budgets = resolveBudgets(config.budgets, flags.budget.map(parseBudgetFlag));
      const result = await runGuarded(
        { model: flags.model!, data: flags.data!, calib: flags.calib, shifts: flags.shift.map(parseShift), out: flags.out, config, budgets },
        stderrProgress(),
      );
      if (!flags.quiet) io.out(result.markdown.endsWith('\n') ? result.markdown : result.markdown + '\n');
      io.exit(result.ledger.verdict === 'fail' ? EXIT.fail : EXIT.pass);
    });
  addCompareCommands(program, io);
  return program;
}

/** Latency and evaluation flags shared by compare and selftest (same meaning as in run). */
function addMeasureOptions(cmd: Command): Command {
  return cmd
    .option('--config <path>', `config file (default: ./${DEFAULT_CONFIG_FILE} when present)`)
    .option('--budget <name=value>', 'budget limit, repeatable; overrides the config file', collect, [])
    .option('--batch-sizes <list>', 'latency batch sizes, comma separated; the first is the one judged', positiveInts('--batch-sizes'))
    .option('--warmup <n>', 'untimed latency runs per model and batch size', count('--warmup', 0))
    .option('--runs <n>', 'timed latency runs (at least) per model and batch size', count('--runs', 1))
    .option('--threads <n>', 'onnxruntime intra-op threads (0 = all cores)', count('--threads', 0))
    .option('--eval-batch-size <n>', 'batch size for accuracy evaluation', count('--eval-batch-size', 1))
    .option('--output <name>', 'the model output to judge (needed when the models have several)')
    .option('--quiet', 'do not print the report');
}

function addCompareCommands(program: Command, io: { out: (s: string) => void; exit: (code: number) => void }): void {
  const print = (flags: { quiet?: boolean }, text: string) => {
    if (!flags.quiet) io.out(text.endsWith('\n') ? text : text + '\n');
  };
  const compare = program
    .command('compare')
    .description('measure two models (no pruning) on the same data and judge head against base; ledger.json and ledger.md in --out')
    .requiredOption('--base <path>', 'the model in use (reference)')
    .requiredOption('--head <path>', 'the candidate model')
    .requiredOption('--data <path>', 'labelled evaluation set (.npz)')
    .requiredOption('--out <dir>', 'output folder for ledger.json and ledger.md')
    .option('--shift <name=path>', 'labelled distribution-shift set, repeatable', collect, []);
  addStatisticsOptions(addMeasureOptions(compare)).action(async (flags: RunFlags & { base: string; head: string }) => {
    const config = resolveConfig({ ...flags, exclude: [] });
    const budgets = resolveBudgets(config.budgets, flags.budget.map(parseBudgetFlag));
    const result = await comparePipeline({ base: flags.base, head: flags.head, data: flags.data!, shifts: flags.shift.map(parseShift), out: flags.out, config, budgets }, stderrProgress());
    print(flags, result.markdown);
    io.exit(result.ledger.verdict === 'fail' ? EXIT.fail : EXIT.pass);
  });

  const self = program
    .command('selftest')
    .description('A/A test of this runner: a model against itself K times; reports the false-alarm rate and the smallest latency change it can detect')
    .option('--model <path>', 'ONNX classifier (default: the bundled Fashion-MNIST MLP fixture)')
    .option('--data <path>', 'labelled evaluation set (default: the bundled Fashion-MNIST test fixture)')
    .option('--repetitions <k>', 'A/A repetitions', count('--repetitions', 1), 10)
    .option('--out <dir>', 'also write selftest.json here');
  addStatisticsOptions(addMeasureOptions(self)).action(async (flags: RunFlags & { repetitions: number; out?: string }) => {
    const config = resolveConfig({ ...flags, shift: [], exclude: [] });
    const budgets = resolveBudgets(config.budgets, flags.budget.map(parseBudgetFlag));
    const report = await selftest({ model: flags.model, data: flags.data, repetitions: flags.repetitions, config, budgets, out: flags.out }, stderrProgress());
    print(flags, renderSelftest(report));
    io.exit(EXIT.pass);
  });
}

/**
 * Parse argv and run; returns the exit code instead of exiting so tests can call it in process.
 * User errors print one line; anything else is a bug and keeps its stack trace.
 */
export async function main(argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  let code: number = EXIT.pass;
  const program = buildProgram({ out, exit: (c) => (code = c) });
  installSignalCleanup();
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with exit code 0
      return e.exitCode === 0 ? EXIT.pass : EXIT.usage;
    }
    if (isUserError(e)) {
      process.stderr.write(`prune-guard: error: ${e.message}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`prune-guard: internal error (please report it): ${e instanceof Error ? e.stack : describe(e)}\n`);
    return EXIT.internal;
  }
}
