import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { overallVerdict } from '../ledger/budgets.js';
import { LEDGER_SCHEMA, type Ledger, type ModelLedger } from '../ledger/types.js';
import type { Progress } from '../io/progress.js';
import { runPipeline } from '../pipeline/run.js';
import { VERSION } from '../version.js';
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
 * Prunes and measures each model; in a pull request also the same model at the merge base, so the
 * ledger shows base, head and the change. A model that is new in the pull request has no base.
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
    const head = await runPipeline({ ...request, model: path.join(opts.workspace, job.path), out: path.join(opts.out, 'models', slug(job.path)) }, opts.progress);
    const ledger = head.ledger;
    const model = ledger.models[0];
    model.model = job.path;
    model.pruned = path.relative(opts.workspace, model.pruned).split(path.sep).join('/');
    model.eval.data = workspacePath(opts.workspace, model.eval.data);
    if (opts.base) {
      const basePath = job.basePath ?? job.path;
      const dir = path.join(opts.temp, 'prune-guard-base', slug(job.path));
      const baseFile = path.join(dir, path.basename(basePath));
      if (showFileAt(opts.base.cwd, opts.base.ref, basePath, baseFile)) {
        opts.progress.note(`base ${basePath} at ${opts.base.ref.slice(0, 12)}`);
        const base = await runPipeline({ ...request, model: baseFile, out: path.join(dir, 'out') }, opts.progress);
        model.vs_base = await compareWithBase({
          ref: opts.base.ref,
          baseModel: basePath,
          baseSteps: base.ledger.models[0].steps,
          headSteps: model.steps,
          data: settings.data,
          shifts: settings.shifts,
          config: settings.config,
          budgets: settings.budgets,
        }, opts.progress);
        model.vs_base.base_budgets = base.ledger.models[0].budgets;
        model.verdict = overallVerdict([model.verdict, model.vs_base.verdict]);
      } else {
        opts.progress.note(`${job.path} is new in this pull request: no base to compare with`);
      }
    }
    ledger.verdict = model.verdict;
    // the per-model files predate the base comparison; the action writes one merged ledger instead
    fs.rmSync(head.ledgerPath, { force: true });
    fs.rmSync(head.markdownPath, { force: true });
    ledgers.push(ledger);
  }
  return ledgers;
}

/** One ledger for many: every model, the worst verdict, the first runtime (all runners of a matrix use the same action). */
export function mergeLedgers(ledgers: readonly Ledger[]): Ledger {
  const models: ModelLedger[] = ledgers.flatMap((l) => l.models).sort((a, b) => a.model.localeCompare(b.model));
  return {
    schema: LEDGER_SCHEMA,
    verdict: overallVerdict(models.map((m) => m.verdict)),
    tool: { name: 'prune-guard', version: VERSION },
    created_at: new Date().toISOString(),
    runtime: ledgers[0]?.runtime ?? { onnxruntime: 'not loaded', provider: 'cpu', threads: 0, platform: `${process.platform}-${process.arch}` },
    models,
  };
}

/** Reads every ledger.json under `dir` (the shards' downloaded artifacts). */
export function readLedgers(dir: string): Ledger[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name === 'ledger.json') found.push(full);
    }
  };
  walk(dir);
  return found.sort().map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Ledger);
}
