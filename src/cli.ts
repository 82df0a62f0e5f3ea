import * as fs from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { loadConfig, mergeConfig } from './config/loadConfig.js';
import { DEFAULT_CONFIG, type Config } from './config/schema.js';
import { describe, isUserError, UserError } from './errors.js';
import { parseBudgetFlag, resolveBudgets } from './ledger/budgets.js';
import { runPipeline } from './pipeline/run.js';
import { stderrProgress } from './pipeline/progress.js';
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

function parseShift(text: string): { name: string; path: string } {
  const eq = text.indexOf('=');
  if (eq <= 0 || eq === text.length - 1) throw new UserError(`--shift ${text}: expected NAME=path.npz, e.g. --shift rotated=shift.npz`);
  return { name: text.slice(0, eq), path: text.slice(eq + 1) };
}

interface RunFlags {
  model: string;
  data: string;
  calib?: string;
  shift: string[];
  out: string;
  config?: string;
  budget: string[];
  sparsity?: number;
  method?: Config['method'];
  recovery?: Config['recovery'];
  scope?: Config['scope'];
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
  quiet?: boolean;
}

/** The config file named by --config, else ./.prune-guard.yml when present, else the defaults. */
function resolveConfig(flags: RunFlags): Config {
  const file = flags.config ?? (fs.existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  const base = file ? loadConfig(file) : { ...DEFAULT_CONFIG };
  const latency = { ...base.latency };
  if (flags.warmup !== undefined) latency.warmup = flags.warmup;
  if (flags.runs !== undefined) latency.runs = flags.runs;
  if (flags.threads !== undefined) latency.threads = flags.threads;
  const overrides: Partial<Config> = { latency };
  if (flags.sparsity !== undefined) overrides.sparsity = flags.sparsity;
  if (flags.method !== undefined) overrides.method = flags.method;
  if (flags.recovery !== undefined) overrides.recovery = flags.recovery;
  if (flags.scope !== undefined) overrides.scope = flags.scope;
  if (flags.exclude.length) overrides.exclude = [...base.exclude, ...flags.exclude];
  if (flags.keepFirstLayer) overrides.keepFirstLayer = true;
  if (flags.keepLastLayer) overrides.keepLastLayer = true;
  if (flags.bakeTemperature) overrides.bakeTemperature = true;
  if (flags.recoveryCommand !== undefined) overrides.recoveryCommand = flags.recoveryCommand;
  if (flags.recoveryTimeBudget !== undefined) overrides.recoveryTimeBudget = flags.recoveryTimeBudget;
  if (flags.batchSizes) overrides.batchSizes = flags.batchSizes;
  if (flags.evalBatchSize !== undefined) overrides.evalBatchSize = flags.evalBatchSize;
  return mergeConfig(base, overrides);
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
    .option('--config <path>', `config file (default: ./${DEFAULT_CONFIG_FILE} when present)`)
    .option('--budget <name=value>', 'budget limit, repeatable; overrides the config file', collect, [])
    .option('--sparsity <fraction>', 'target fraction of prunable weights set to zero', fraction('--sparsity'))
    .option('--method <method>', 'pruning method: unstructured, structured, hybrid or an N:M pattern such as 2:4')
    .addOption(new Option('--recovery <recovery>', 'accuracy recovery after pruning (default auto: reconstruct + BatchNorm re-estimation with --calib, each kept only if it helps on the calibration set)').choices(['none', 'reconstruct', 'distill', 'auto', 'command']))
    .addOption(new Option('--scope <scope>', 'magnitude threshold over all layers together or per layer').choices(['global', 'layer']))
    .option('--exclude <glob>', 'node or initializer names never pruned, repeatable', collect, [])
    .option('--keep-first-layer', 'do not prune the first prunable layer')
    .option('--keep-last-layer', 'do not prune the last prunable layer')
    .option('--recovery-command <cmd>', 'shell command for --recovery command; gets PRUNE_GUARD_MODEL_IN, _MODEL_OUT, _MASKS, _CALIB, _DATA (see README)')
    .option('--recovery-time-budget <seconds>', 'stop refitting further layers after this many seconds (0 = no limit)', count('--recovery-time-budget', 0))
    .option('--bake-temperature', 'divide the shipped model\'s logits by the temperature fitted on --calib (needs labels)')
    .option('--batch-sizes <list>', 'latency batch sizes, comma separated; the first is shown in the headline', positiveInts('--batch-sizes'))
    .option('--warmup <n>', 'untimed latency runs per model and batch size', count('--warmup', 0))
    .option('--runs <n>', 'timed latency runs per model and batch size', count('--runs', 1))
    .option('--threads <n>', 'onnxruntime intra-op threads (0 = all cores)', count('--threads', 0))
    .option('--eval-batch-size <n>', 'batch size for accuracy evaluation', count('--eval-batch-size', 1))
    .option('--quiet', 'do not print the ledger')
    .action(async (flags: RunFlags) => {
      const config = resolveConfig(flags);
      const budgets = resolveBudgets(config.budgets, flags.budget.map(parseBudgetFlag));
      const result = await runPipeline(
        { model: flags.model, data: flags.data, calib: flags.calib, shifts: flags.shift.map(parseShift), out: flags.out, config, budgets },
        stderrProgress(),
      );
      if (!flags.quiet) io.out(result.markdown.endsWith('\n') ? result.markdown : result.markdown + '\n');
      io.exit(result.ledger.verdict === 'fail' ? EXIT.fail : EXIT.pass);
    });
  return program;
}

/**
 * Parse argv and run; returns the exit code instead of exiting so tests can call it in process.
 * User errors print one line; anything else is a bug and keeps its stack trace.
 */
export async function main(argv: readonly string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  let code: number = EXIT.pass;
  const program = buildProgram({ out, exit: (c) => (code = c) });
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
