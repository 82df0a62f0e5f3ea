import { ledgerJson } from '../ledger/compact.js';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { OutputDir } from '../io/outputDir.js';
import { renderMarkdown } from '../ledger/render.js';
import { LEDGER_SCHEMA, type Ledger } from '../ledger/types.js';
import { onnxruntimeVersion } from '../onnx/runtime/ort.js';
import { VERSION } from '../version.js';
import { Deadline, TimedOut } from './deadline.js';
import type { Progress } from '../io/progress.js';
import { prunedPath, runPipeline } from './run.js';
import { type RunRequest, type RunResult } from './request.js';

/** How long a run waits for another run holding the same --out folder when no time budget is set. */
const DEFAULT_LOCK_WAIT_S = 30 * 60;

/** Every string in `value` that is a path under the staging folder, rewritten to its published path. */
function publish<T>(value: T, out: OutputDir): T {
  if (typeof value === 'string') return out.publicPath(value) as T;
  if (Array.isArray(value)) return value.map((v) => publish(v, out)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, publish(v, out)])) as T;
  }
  return value;
}

function timedOutLedger(req: RunRequest, t: TimedOut): Ledger {
  return {
    schema: LEDGER_SCHEMA,
    verdict: 'fail',
    tool: { name: 'prune-guard', version: VERSION },
    created_at: new Date().toISOString(),
    runtime: {
      onnxruntime: onnxruntimeVersion(),
      provider: 'cpu',
      threads: req.config.latency.threads || os.availableParallelism(),
      platform: `${process.platform}-${process.arch}`,
    },
    models: [],
    timed_out: { model: req.model, stage: t.stage, limit_s: t.limitSeconds, elapsed_s: Math.round(t.elapsedSeconds * 10) / 10 },
  };
}

function stageLedger(out: OutputDir, ledger: Ledger): { markdown: string } {
  const markdown = renderMarkdown(ledger);
  writeFileAtomic(path.join(out.staging, 'ledger.json'), ledgerJson(ledger));
  writeFileAtomic(path.join(out.staging, 'ledger.md'), markdown);
  return { markdown };
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

/**
 * `runPipeline` made safe to run in CI: the --out folder is locked, everything is written to a staging
 * folder and published together at the end (ledger last), a failure or SIGTERM publishes nothing, and
 * a run past its time budget stops and publishes only a `fail` ledger saying where it stopped.
 */
export async function runGuarded(req: RunRequest, progress: Progress): Promise<RunResult> {
  if (path.resolve(prunedPath(req.out, req.model)) === path.resolve(req.model)) {
    throw new UserError(`--out ${req.out}: would overwrite the input model ${req.model}; choose another output folder`);
  }
  for (const n of infeasibleBudgetNotes(req)) progress.note(n);
  const out = await OutputDir.open(req.out, {
    waitMs: (req.config.timeBudget ?? DEFAULT_LOCK_WAIT_S) * 1000,
    onWait: (m) => progress.note(m),
  });
  const deadline = new Deadline(req.config.timeBudget);
  const ledgerPath = path.join(req.out, 'ledger.json');
  const markdownPath = path.join(req.out, 'ledger.md');
  try {
    let ledger: Ledger;
    try {
      ledger = publish((await runPipeline({ ...req, out: out.staging }, deadline.watch(progress))).ledger, out);
    } catch (e) {
      if (!(e instanceof TimedOut)) throw e;
      progress.stop();
      progress.note(`${req.model}: ${e.message}; writing a fail ledger`);
      out.discardStaged();
      // the folder's ledger will say no pruned model was written: an older one must not sit beside it
      out.retire(path.basename(prunedPath(req.out, req.model)));
      ledger = timedOutLedger(req, e);
    }
    const { markdown } = stageLedger(out, ledger);
    out.commit(['ledger.md', 'ledger.json']);
    return { ledger, markdown, ledgerPath, markdownPath };
  } finally {
    out.abort(); // no-op after commit
  }
}
