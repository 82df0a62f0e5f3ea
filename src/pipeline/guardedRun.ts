import * as path from 'node:path';
import type { Config } from '../config/schema.js';
import { UserError } from '../errors.js';
import { OutputDir } from '../io/outputDir.js';
import { refuseInputsInOutput, type NamedInput } from '../io/inputPaths.js';
import { ledgerEnvelope } from '../ledger/envelope.js';
import type { Ledger } from '../ledger/types.js';
import { Deadline, TimedOut } from './deadline.js';
import type { Progress } from '../io/progress.js';
import { LEDGER_FILES, measuredRuntime, writeLedgerFiles } from './ledger.js';
import { prunedPath, runPipeline } from './run.js';
import { type RunRequest, type RunResult } from './request.js';
import { hashInputs, reproduceRecord } from './reproduce.js';

/** How long a run waits for another run holding the same --out folder when no time budget is set. */
const DEFAULT_LOCK_WAIT_S = 30 * 60;

/** Lock and stage `out` for a set of `names`; waits for another run there up to the time budget. */
export function openOutput(out: string, config: Pick<Config, 'timeBudget'>, progress: Progress, names: readonly string[]): Promise<OutputDir> {
  return OutputDir.open(out, { waitMs: (config.timeBudget ?? DEFAULT_LOCK_WAIT_S) * 1000, onWait: (m) => progress.note(m), names });
}

/** Files a caller adds to a guarded run's set, written once the ledger is known. */
export interface PublishLast {
  names: readonly string[];
  write: (ledger: Ledger, staging: string) => void;
}

/** Every string in `value` that is a path under the staging folder, rewritten to its published path. */
function publish<T>(value: T, out: OutputDir): T {
  if (typeof value === 'string') return out.publicPath(value) as T;
  if (Array.isArray(value)) return value.map((v) => publish(v, out)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, publish(v, out)])) as T;
  }
  return value;
}

/** The ledger of a run stopped by its time budget: no model, the stage it stopped in, verdict `fail`. */
function timedOutLedger(req: RunRequest, t: TimedOut): Ledger {
  const stopped = { model: req.model, stage: t.stage, limit_s: t.limitSeconds, elapsed_s: Math.round(t.elapsedSeconds * 10) / 10 };
  return ledgerEnvelope([], measuredRuntime({ provider: 'cpu' }, req.config), [stopped]);
}

/**
 * Budgets this run cannot meet, said before minutes of measuring: unstructured and N:M zeros keep the
 * dense shapes, and onnxruntime's CPU kernels run zeros as fast as any other weight.
 */
export function infeasibleBudgetNotes(req: Pick<RunRequest, 'config' | 'budgets'>): string[] {
  const notes: string[] = [];
  const speedup = req.budgets.find((b) => b.name === 'min-speedup');
  const keepsShapes = req.config.method === 'unstructured' || /^\d+:\d+$/.test(req.config.method);
  if (speedup && speedup.limit > 1 && keepsShapes) {
    notes.push(
      `note: budget min-speedup=${speedup.limit} will most likely fail: ${req.config.method} pruning keeps every tensor shape and onnxruntime on CPU does not skip zeros, so expect about 1.0x; use --method structured for speed, or drop the budget`,
    );
  }
  return notes;
}

/** Every file a run reads, as the user named it. */
export function runInputs(req: Pick<RunRequest, 'model' | 'data' | 'calib' | 'shifts' | 'configFile'>): NamedInput[] {
  return [
    { flag: '--model', path: req.model },
    { flag: '--data', path: req.data },
    ...(req.calib ? [{ flag: '--calib', path: req.calib }] : []),
    ...req.shifts.map((s) => ({ flag: `--shift ${s.name}`, path: s.path })),
    ...(req.configFile ? [{ flag: '--config', path: req.configFile }] : []),
  ];
}

/**
 * `runPipeline` made safe to run in CI: the --out folder is locked, everything is written to a staging
 * folder and published together at the end, a failure or SIGTERM publishes nothing, and a run past its
 * time budget stops and publishes no model. Returns the run's ledger (one model, or a `fail` saying where
 * it stopped); `last` stages files of its own (its `names`, checked before any work), published with
 * the artifacts.
 */
export async function guardedLedger(req: RunRequest, progress: Progress, last: PublishLast = { names: [], write: () => {} }): Promise<Ledger> {
  if (path.resolve(prunedPath(req.out, req.model)) === path.resolve(req.model)) {
    throw new UserError(`--out ${req.out}: would overwrite the input model ${req.model}; choose another output folder`);
  }
  refuseInputsInOutput(req.out, runInputs(req));
  for (const n of infeasibleBudgetNotes(req)) progress.note(n);
  const out = await openOutput(req.out, req.config, progress, [path.basename(prunedPath(req.out, req.model)), 'steps', ...last.names]);
  const deadline = new Deadline(req.config.timeBudget);
  try {
    let ledger: Ledger;
    try {
      const run = await runPipeline({ ...req, out: out.staging }, deadline.watch(progress));
      ledger = ledgerEnvelope([publish(run.model, out)], run.runtime);
    } catch (e) {
      if (!(e instanceof TimedOut)) throw e;
      progress.stop();
      progress.note(`${req.model}: ${e.message}; writing a fail ledger`);
      // the new set has no pruned model, so an older one leaves the folder with the swap
      out.discardStaged();
      ledger = timedOutLedger(req, e);
    }
    last.write(ledger, out.staging);
    out.commit();
    return ledger;
  } finally {
    out.abort(); // no-op after commit
  }
}

/** The CLI's `run`: a guarded run whose ledger.json and ledger.md are published with it, last. */
export async function runGuarded(req: RunRequest, progress: Progress): Promise<RunResult> {
  let markdown = '';
  const ledger = await guardedLedger(req, progress, {
    names: LEDGER_FILES,
    write: (l, staging) => {
      // the inputs are hashed once the run has read and checked them, so a bad path keeps its own message
      if (req.argv) l.reproduce = reproduceRecord(req, req.argv, hashInputs(runInputs(req)), l.models.length > 0 ? path.join(staging, path.basename(prunedPath(req.out, req.model))) : null);
      markdown = writeLedgerFiles(staging, l).markdown;
    },
  });
  return { ledger, markdown, ledgerPath: path.join(req.out, 'ledger.json'), markdownPath: path.join(req.out, 'ledger.md') };
}
