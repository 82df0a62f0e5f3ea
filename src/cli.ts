import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { parseBudgetFlag } from './config/budgets.js';
import { loadConfig } from './config/loadConfig.js';
import { DEFAULT_CONFIG, type Command as CommandName, type Config } from './config/schema.js';
import { parseShiftSets } from './config/shifts.js';
import { applyGiven, BUDGET_FLAG, FLAGS, readText, type Given } from './config/sources.js';
import { describe, isUserError } from './errors.js';
import { resolveBudgets, type ResolvedBudget } from './ledger/budgets.js';
import { comparePipeline } from './pipeline/compare.js';
import { renderSelftest, selftest } from './pipeline/selftest.js';
import { runGuarded } from './pipeline/guardedRun.js';
import { verifyRecorded } from './pipeline/reproduce.js';
import type { Ledger } from './ledger/types.js';
import { lineProgress, type Progress } from './io/progress.js';
import { stderrProgress } from './io/stderrProgress.js';
import { VERSION } from './version.js';

/** Exit codes are part of the CLI contract. */
export const EXIT = { pass: 0, fail: 1, usage: 2, internal: 3 } as const;

const DEFAULT_CONFIG_FILE = '.prune-guard.yml';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function count(flag: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${flag} must be an integer >= ${min} (got '${v}')`);
    return n;
  };
}

/** Flags that name the inputs rather than settings; settings land under their flags' attribute names. */
export interface InputFlags {
  config?: string;
  budget: string[];
  shift?: string[];
  quiet?: boolean;
  [attribute: string]: unknown;
}

const attributeOf = new Map(FLAGS.map((f) => [f, new Option(f.syntax).attributeName()]));

/** The setting flags of one command, each generated from its setting: syntax, help, choices and parser. */
function addSettingFlags(cmd: Command, command: CommandName): Command {
  for (const spec of FLAGS.filter((f) => f.commands.includes(command))) {
    const option = new Option(spec.syntax, spec.help);
    if (spec.choices) option.choices(spec.choices);
    else if (!spec.ref.kind.isSwitch) {
      option.argParser((text: string, previous: unknown) => {
        const read = readText(spec.ref, text, spec.flag);
        if ('message' in read) throw new InvalidArgumentError(read.message);
        return spec.ref.kind.item ? [...((previous as unknown[] | undefined) ?? []), read.value] : read.value;
      });
    }
    cmd.addOption(option);
  }
  return cmd
    .option('--config <path>', `config file (default: ./${DEFAULT_CONFIG_FILE} when present)`)
    .option(BUDGET_FLAG.syntax, BUDGET_FLAG.help, collect, []);
}

/**
 * An empty value is refused for every flag that takes one: `--sparsity "$UNSET"` must not read as 0, nor
 * `--out ""` as the working directory.
 */
function refuseEmptyValues(cmd: Command): Command {
  for (const option of cmd.options) {
    if (!option.required && !option.optional) continue;
    const parse = option.parseArg;
    option.argParser((text: string, previous: unknown) => {
      if (text.trim() === '') throw new InvalidArgumentError(`${option.long} is empty (an unset variable?); give a value or leave the flag out`);
      return parse ? parse(text, previous) : text;
    });
  }
  return cmd;
}

/**
 * The config a command runs with: the file named by --config, else ./.prune-guard.yml when present, else
 * the defaults; setting flags over it; and the budgets, --budget over the file over the defaults.
 */
export function resolveConfig(flags: InputFlags, command: CommandName): { config: Config; budgets: ResolvedBudget[] } {
  const file = flags.config ?? (fs.existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  const base = file ? loadConfig(file) : DEFAULT_CONFIG;
  const given = FLAGS.filter((f) => f.commands.includes(command)).flatMap((f): Given[] => {
    const value = flags[attributeOf.get(f)!];
    if (value === undefined) return [];
    return f.ref.kind.item ? (value as unknown[]).map((v) => ({ ref: f.ref, value: v })) : [{ ref: f.ref, value }];
  });
  const config = applyGiven(base, given, 'command-line flags');
  return { config, budgets: resolveBudgets(config.budgets, flags.budget.map((text) => parseBudgetFlag(text))) };
}

const shiftSets = (flags: InputFlags) => parseShiftSets(flags.shift ?? [], (entry) => `--shift '${entry}'`);

/** Where one invocation writes: the report, error lines and the stage log. */
export interface CliIO {
  /** the ledger or report, --help and --version */
  stdout: (text: string) => void;
  /** one line per user error */
  stderr: (text: string) => void;
  /** long stages and a recovery command's own output */
  progress: Progress;
}

interface ProgramIO {
  out: (s: string) => void;
  err?: (s: string) => void;
  progress?: Progress;
  exit: (code: number) => void;
  /** the arguments being parsed: a `run` records them for `verify` */
  argv?: readonly string[];
}

/** The CLI; exported so tests can read the options generated for each command. */
export function buildProgram(io: ProgramIO): Command {
  const err = io.err ?? ((s: string) => void process.stderr.write(s));
  const progress = (): Progress => io.progress ?? stderrProgress();
  const program = new Command('prune-guard')
    .description('Prune ONNX models and gate them on a budget ledger measured on the saved files')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: err });
  const print = (flags: InputFlags, text: string) => {
    if (!flags.quiet) io.out(text.endsWith('\n') ? text : text + '\n');
  };

  const run = program
    .command('run')
    .description('prune one model, measure dense and pruned on the same data, write ledger.json and ledger.md')
    .requiredOption('--model <path>', 'ONNX classifier to prune (never modified)')
    .requiredOption('--data <path>', 'labelled evaluation set (.npz with x and y, or one array per input name plus y)')
    .requiredOption('--out <dir>', 'output folder for <model>.pruned.onnx, ledger.json, ledger.md')
    .option('--calib <path>', 'calibration set (.npz), validated against the model')
    .option('--shift <name=path>', 'labelled distribution-shift set, repeatable', collect, []);
  addSettingFlags(run, 'run')
    .option('--quiet', 'do not print the ledger')
    .action(async (flags: InputFlags & { model: string; data: string; out: string; calib?: string }) => {
      const { config, budgets } = resolveConfig(flags, 'run');
      const argv = io.argv?.[0] === 'run' ? io.argv.slice(1) : undefined;
      const result = await runGuarded({ model: flags.model, data: flags.data, calib: flags.calib, shifts: shiftSets(flags), out: flags.out, configFile: flags.config, config, budgets, ...(argv ? { argv } : {}) }, progress());
      print(flags, result.markdown);
      io.exit(result.ledger.verdict === 'fail' ? EXIT.fail : EXIT.pass);
    });

  const compare = program
    .command('compare')
    .description('measure two models (no pruning) on the same data and judge head against base; ledger.json and ledger.md in --out')
    .requiredOption('--base <path>', 'the model in use (reference)')
    .requiredOption('--head <path>', 'the candidate model')
    .requiredOption('--data <path>', 'labelled evaluation set (.npz)')
    .requiredOption('--out <dir>', 'output folder for ledger.json and ledger.md')
    .option('--shift <name=path>', 'labelled distribution-shift set, repeatable', collect, []);
  addSettingFlags(compare, 'compare')
    .option('--quiet', 'do not print the report')
    .action(async (flags: InputFlags & { base: string; head: string; data: string; out: string }) => {
      const { config, budgets } = resolveConfig(flags, 'compare');
      const result = await comparePipeline({ base: flags.base, head: flags.head, data: flags.data, shifts: shiftSets(flags), out: flags.out, config, budgets }, progress());
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
  addSettingFlags(self, 'selftest')
    .option('--quiet', 'do not print the report')
    .action(async (flags: InputFlags & { model?: string; data?: string; repetitions: number; out?: string }) => {
      const { config, budgets } = resolveConfig(flags, 'selftest');
      const report = await selftest({ model: flags.model, data: flags.data, repetitions: flags.repetitions, config, budgets, out: flags.out }, progress());
      print(flags, renderSelftest(report));
      io.exit(EXIT.pass);
    });

  program
    .command('verify')
    .description('re-run a `run` from its ledger.json (same inputs by sha256, same arguments) and confirm the same pruned file and quality numbers; exit 0 when they match, 1 with one line per difference, 2 when an input changed')
    .argument('<ledger>', 'ledger.json written by prune-guard run')
    .option('--out <dir>', 'output folder for the re-run (default: a temporary folder, removed afterwards)')
    .action(async (ledgerPath: string, flags: { out?: string }) => {
      const out = flags.out ? path.resolve(flags.out) : fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-verify-'));
      try {
        const differences = await verifyRecorded(ledgerPath, async (argv, cwd) => {
          const before = process.cwd();
          process.chdir(cwd);
          try {
            const args = ['run', ...argv, '--out', out, '--quiet'];
            await buildProgram({ out: () => {}, err, progress: progress(), exit: () => {}, argv: args }).parseAsync(args, { from: 'user' });
          } finally {
            process.chdir(before);
          }
          return JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
        });
        if (differences.length === 0) io.out(`verified: ${ledgerPath} reproduced (the same pruned file and quality numbers)\n`);
        for (const d of differences) io.out(`differs: ${d}\n`);
        io.exit(differences.length === 0 ? EXIT.pass : EXIT.fail);
      } finally {
        if (!flags.out) fs.rmSync(out, { recursive: true, force: true });
      }
    });

  for (const cmd of program.commands) refuseEmptyValues(cmd);
  return program;
}

/**
 * Parse argv and run; returns the exit code instead of exiting, and writes only through `io` (the
 * process's streams by default), so it can run many times in one process. Signal handling belongs to
 * the bin. User errors print one line; anything else is a bug and keeps its stack trace.
 */
export async function main(argv: readonly string[], io: Partial<CliIO> = {}): Promise<number> {
  const out = io.stdout ?? ((s: string) => void process.stdout.write(s));
  const err = io.stderr ?? ((s: string) => void process.stderr.write(s));
  const progress = io.progress ?? (io.stderr ? lineProgress(io.stderr) : stderrProgress());
  let code: number = EXIT.pass;
  const program = buildProgram({ out, err, progress, exit: (c) => (code = c), argv });
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with exit code 0
      return e.exitCode === 0 ? EXIT.pass : EXIT.usage;
    }
    if (isUserError(e)) {
      err(`prune-guard: error: ${e.message}\n`);
      return EXIT.usage;
    }
    err(`prune-guard: internal error (please report it): ${e instanceof Error ? e.stack : describe(e)}\n`);
    return EXIT.internal;
  }
}
