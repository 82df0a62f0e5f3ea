import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { overallVerdict } from '../ledger/budgets.js';
import { ledgerEnvelope, timedOutRuns } from '../ledger/envelope.js';
import type { Ledger, ModelLedger, TimedOut } from '../ledger/types.js';
import type { Progress } from '../io/progress.js';
import { PRIVATE_DIR } from '../io/lock.js';
import { guardedLedger } from '../pipeline/guardedRun.js';
import { compareWithBase } from './compareBase.js';
import { showFileAt } from './gitBase.js';
import type { PipelineSettings } from './settings.js';

export interface ModelJob {
  /** repository-relative path at head */
  path: string;
  /** path at the base commit when it differs (a renamed file) */
  basePath?: string;
}

export interface BaseSource {
  /** the merge-base commit */
  ref: string;
  /** the git checkout holding it */
  cwd: string;
}

/** A checkout without `lfs: true` holds a small text pointer where the model should be. */
export function refuseLfsPointer(file: string, shown: string): void {
  let head = '';
  try {
    const fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(40);
    fs.readSync(fd, buf, 0, 40, 0);
    fs.closeSync(fd);
    head = buf.toString('latin1');
  } catch {
    return; // a missing file is reported by the pipeline
  }
  if (head.startsWith('version https://git-lfs')) {
    throw new UserError(`${shown}: is a Git LFS pointer, not the model; check out with \`lfs: true\` on actions/checkout`);
  }
}

/** Repository-relative for files in the checkout (what a reader of the comment recognises), else as given. */
function workspacePath(workspace: string, file: string): string {
  const rel = path.relative(workspace, file);
  return rel.startsWith('..') || path.isAbsolute(rel) ? file : rel.split(path.sep).join('/');
}

/** A folder name for a model path: unique per path, readable, safe on every filesystem. */
export function slug(file: string): string {
  return file.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/**
 * Prunes and measures each model through the CLI's guarded path (output-folder lock, staging, atomic
 * publish, the config's time budget); in a pull request also the same model at the merge base, so the
 * ledger shows base, head and the change. A model that is new in the pull request has no base. Returns
 * one ledger per model; a run that ran out of time is in it as `timed_out`, named by its repository path.
 * Nothing is written but the models' artifacts: the action writes the one merged ledger.
 */
export async function checkModels(
  jobs: readonly ModelJob[],
  settings: PipelineSettings,
  opts: { workspace: string; out: string; temp: string; base?: BaseSource; progress: Progress },
): Promise<Ledger[]> {
  const ledgers: Ledger[] = [];
  for (const job of jobs) {
    // latency-regression is judged against the base version only (compareWithBase), never dense vs pruned
    const own = settings.budgets.filter((b) => b.name !== 'latency-regression');
    const request = { data: settings.data, calib: settings.calib, shifts: settings.shifts, config: settings.config, budgets: own };
    opts.progress.note(`model ${job.path}`);
    refuseLfsPointer(path.join(opts.workspace, job.path), job.path);
    const head = await guardedLedger({ ...request, model: path.join(opts.workspace, job.path), out: path.join(opts.out, 'models', slug(job.path)) }, opts.progress);
    const model = head.models[0];
    if (!model) {
      ledgers.push(ledgerEnvelope([], head.runtime, timedOutRuns(head).map((t) => ({ ...t, model: job.path }))));
      continue;
    }
    model.model = job.path;
    model.pruned = path.relative(opts.workspace, model.pruned).split(path.sep).join('/');
    model.eval.data = workspacePath(opts.workspace, model.eval.data);
    const timedOut: TimedOut[] = [];
    if (opts.base && model.task === 'fidelity') {
      // the base's outputs are another model's, not a reference the head should reproduce: each version is judged against its own dense model
      const line = `base comparison: not made for task fidelity; ${job.path} is judged against its own dense model`;
      opts.progress.note(line);
      model.notes = [...(model.notes ?? []), line];
    } else if (opts.base) {
      const basePath = job.basePath ?? job.path;
      const dir = path.join(opts.temp, 'prune-guard-base', slug(job.path));
      const baseFile = path.join(dir, path.basename(basePath));
      const at = `${basePath} at ${opts.base.ref.slice(0, 12)}`;
      if (showFileAt(opts.base.cwd, opts.base.ref, basePath, baseFile)) {
        opts.progress.note(`base ${at}`);
        const base = await guardedLedger({ ...request, model: baseFile, out: path.join(dir, 'out') }, opts.progress);
        if (base.models[0]) {
          model.vs_base = await compareWithBase({
            ref: opts.base.ref,
            baseModel: basePath,
            baseSteps: base.models[0].steps,
            headSteps: model.steps,
            data: settings.data,
            shifts: settings.shifts,
            config: settings.config,
            budgets: settings.budgets,
          }, opts.progress);
          model.vs_base.base_budgets = base.models[0].budgets;
          model.verdict = overallVerdict([model.verdict, model.vs_base.verdict]);
        } else {
          // head was measured, but without its base there is no comparison to judge: the time budget failed it
          timedOut.push(...timedOutRuns(base).map((t) => ({ ...t, model: at })));
        }
      } else {
        opts.progress.note(`${job.path} is new in this pull request: no base to compare with`);
      }
    }
    ledgers.push(ledgerEnvelope([model], head.runtime, timedOut));
  }
  return ledgers;
}

/**
 * One ledger for many: every model and every run that timed out, the worst verdict, and the runtime of
 * the first ledger that measured a model (all runners of a matrix use the same action).
 */
export function mergeLedgers(ledgers: readonly Ledger[]): Ledger {
  const models: ModelLedger[] = ledgers.flatMap((l) => l.models).sort((a, b) => a.model.localeCompare(b.model));
  const timedOut = ledgers.flatMap(timedOutRuns).sort((a, b) => a.model.localeCompare(b.model));
  const runtime = (ledgers.find((l) => l.models.length > 0) ?? ledgers[0])?.runtime ?? { onnxruntime: 'not loaded', provider: 'cpu', threads: 0, platform: `${process.platform}-${process.arch}` };
  return ledgerEnvelope(models, runtime, timedOut);
}

/** Reads every ledger.json under `dir` (the shards' downloaded artifacts). */
export function readLedgers(dir: string): Ledger[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      // an output folder's private run sets hold the same ledgers its visible names link to
      if (e.isDirectory() && e.name !== PRIVATE_DIR) walk(full);
      else if (e.name === 'ledger.json') found.push(full);
    }
  };
  walk(dir);
  return found.sort().map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Ledger);
}
