import { ledgerJson } from '../ledger/compact.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { openOutput } from '../pipeline/guardedRun.js';
import { LEDGER_FILES } from '../pipeline/ledger.js';
import { timedOutRuns } from '../ledger/envelope.js';
import type { Ledger } from '../ledger/types.js';
import { stageLine, type Progress } from '../io/progress.js';
import { checkModels, mergeLedgers, readLedgers, type BaseSource, type ModelJob } from './checkModels.js';
import { upsertStickyComment } from './comment.js';
import { COMMENT_LIMIT, fitComment } from './fit.js';
import { gateFails, publishGate } from './gate.js';
import type { ActionIO } from './actionIO.js';
import type { ActionInputs } from './inputs.js';
import { mergeBase } from './gitBase.js';
import { findModels, modelMatcher, shardModels } from './models.js';
import { runNightly } from './nightly.js';
import { isForbidden, type Octokit, type RunContext } from './octokit.js';
import { changedModels } from './prFiles.js';
import { oneModel, renderReport, type Links } from './report.js';
import { resolveSettings, type PipelineSettings } from './settings.js';

export interface ActionEnv {
  /** the checked-out repository (GITHUB_WORKSPACE) */
  workspace: string;
  /** scratch space (RUNNER_TEMP) */
  temp: string;
  /** the workflow file, repository-relative, for annotations of `budgets:` inputs */
  workflowFile?: string;
}

export interface ActionResult {
  ledger: Ledger;
  ledgerPath: string;
  commentUrl?: string;
  failed: boolean;
}

/** Comments and reports stay readable well past this; the summary file itself allows 1 MiB. */
const SUMMARY_LIMIT = 1_000_000;

const FORK_HINT =
  'This token is read-only (a pull request from a fork, or a `permissions:` block without `pull-requests: write`). ' +
  'The ledger is in the job summary and in ledger.json; to comment anyway, upload the output folder as an artifact and post it ' +
  'from a follow-up workflow triggered by `workflow_run`, which runs with a write token but never checks out the fork\'s code (see README).';

function progressFor(io: ActionIO): Progress {
  return { stage: (e) => io.info(`prune-guard: ${stageLine(e)}`), note: (m) => io.info(`prune-guard: ${m}`), update() {}, stop() {}, output: (text) => process.stderr.write(text) };
}

function pullRequestOf(ctx: RunContext, inputs: ActionInputs): { number: number; base: string; head: string } | undefined {
  if (inputs.pullRequest !== undefined) {
    // a workflow_run follow-up: the pull request is named by the input, its head is the triggering run's commit
    return { number: inputs.pullRequest, base: '', head: String(ctx.payload.workflow_run?.head_sha ?? ctx.sha) };
  }
  const pr = ctx.payload.pull_request;
  if (!pr || typeof pr.number !== 'number') return undefined;
  return { number: pr.number, base: String(pr.base?.sha ?? ''), head: String(pr.head?.sha ?? ctx.sha) };
}

/** Models to check in this run and, for a pull request, where their base versions come from. */
async function selectModels(inputs: ActionInputs, octokit: Octokit, ctx: RunContext, env: ActionEnv): Promise<{ jobs: ModelJob[]; base?: BaseSource; notes: string[]; title: string }> {
  const pr = pullRequestOf(ctx, inputs);
  if (pr && inputs.mode === 'check') {
    const { jobs, unchanged } = await changedModels(octokit, ctx, pr.number, modelMatcher(inputs.models));
    const mine = shardModels(jobs.map((j) => j.path), inputs.shard);
    const selected = jobs.filter((j) => mine.includes(j.path));
    const notes = unchanged ? [`${unchanged} removed model(s) in this pull request are not checked.`] : [];
    const base = selected.length ? { ref: mergeBase(env.workspace, pr.base, pr.head), cwd: env.workspace } : undefined;
    return { jobs: selected, base, notes, title: `${selected.length} changed model${selected.length === 1 ? '' : 's'} in #${pr.number}` };
  }
  const all = findModels(env.workspace, inputs.models, [inputs.out]);
  const jobs = shardModels(all, inputs.shard).map((p) => ({ path: p }));
  return { jobs, notes: [], title: `${jobs.length} model${jobs.length === 1 ? '' : 's'}${inputs.mode === 'nightly' ? ' (nightly)' : ''}` };
}

/**
 * The action: choose the models (changed ones in a pull request, all matching ones otherwise, or the
 * shards' ledgers in aggregate mode), prune and measure them, write the ledger, then report it as a
 * sticky comment, check runs and the job summary, and fail the step per `fail-on`. A token that may not
 * write degrades to the job summary and the ledger file; it never crashes the run.
 */
export async function run(inputs: ActionInputs, octokit: Octokit, ctx: RunContext, env: ActionEnv, io: ActionIO): Promise<ActionResult> {
  if (inputs.onnxruntimePath) process.env.PRUNE_GUARD_ONNXRUNTIME_PATH = path.resolve(env.workspace, inputs.onnxruntimePath);
  const out = path.resolve(env.workspace, inputs.out);
  const progress = progressFor(io);
  let ledger: Ledger;
  let title: string;
  let notes: string[] = [];
  let settings: PipelineSettings | undefined;
  if (inputs.mode === 'aggregate') {
    const dir = path.resolve(env.workspace, inputs.ledgers!);
    if (!fs.existsSync(dir)) throw new UserError(`input ledgers: ${inputs.ledgers} does not exist; download the shards' artifacts there first (actions/download-artifact)`);
    const shards = readLedgers(dir);
    if (shards.length === 0) throw new UserError(`input ledgers: no ledger.json under ${inputs.ledgers}; check the artifact names and download path`);
    ledger = mergeLedgers(shards);
    title = `${ledger.models.length} model${ledger.models.length === 1 ? '' : 's'} from ${shards.length} shard${shards.length === 1 ? '' : 's'}`;
  } else {
    settings = resolveSettings(inputs, env.workspace);
    const selection = await selectModels(inputs, octokit, ctx, env);
    notes = selection.notes;
    title = selection.title;
    if (inputs.shard) notes.push(`Shard ${inputs.shard.index}/${inputs.shard.count}.`);
    io.info(`prune-guard: ${selection.jobs.length ? `checking ${selection.jobs.map((j) => j.path).join(', ')}` : 'no model to check'}`);
    const ledgers = await checkModels(selection.jobs, settings, { workspace: env.workspace, out, temp: env.temp, base: selection.base, progress });
    ledger = mergeLedgers(ledgers);
  }

  const links: Links = {
    run: `${ctx.serverUrl}/${ctx.repo.owner}/${ctx.repo.repo}/actions/runs/${ctx.runId}`,
    artifacts: `${ctx.serverUrl}/${ctx.repo.owner}/${ctx.repo.repo}/actions/runs/${ctx.runId}#artifacts`,
  };
  const sections = renderReport(ledger, { title, links, notes });
  const summaryMarkdown = fitComment(sections, SUMMARY_LIMIT);
  const ledgerPath = path.join(out, 'ledger.json');
  // published as one set like the models' folders: a reader never pairs a new ledger.json with an old ledger.md
  const published = await openOutput(out, { timeBudget: settings?.config.timeBudget }, progress, LEDGER_FILES);
  try {
    writeFileAtomic(path.join(published.staging, 'ledger.json'), ledgerJson(ledger));
    writeFileAtomic(path.join(published.staging, 'ledger.md'), summaryMarkdown);
    published.commit();
  } finally {
    published.abort(); // no-op after commit
  }
  io.setOutput('verdict', ledger.verdict);
  io.setOutput('ledger', ledgerPath);
  io.setOutput('pruned-models', JSON.stringify(ledger.models.map((m) => m.pruned)));

  const result: ActionResult = { ledger, ledgerPath, failed: false };
  const pr = pullRequestOf(ctx, inputs);
  const writes = !!inputs.githubToken;
  // shards of a matrix would overwrite each other's sticky comment: under `auto` the aggregate job comments
  const comments = inputs.comment === 'always' || (inputs.comment === 'auto' && !inputs.shard);
  if (pr && comments && writes) {
    // a run with nothing to report updates an earlier comment but starts none; a model that timed out is something to report
    const create = inputs.comment === 'always' || ledger.models.length > 0 || timedOutRuns(ledger).length > 0;
    try {
      const posted = await upsertStickyComment(octokit, ctx, pr.number, fitComment(sections, COMMENT_LIMIT), { create });
      if (posted) {
        result.commentUrl = posted.url;
        io.info(`prune-guard: ${posted.action} the pull-request comment ${posted.url}`);
      }
    } catch (e) {
      if (!isForbidden(e)) throw e;
      io.warning(`prune-guard: could not comment on #${pr.number} (HTTP 403). ${FORK_HINT}`);
    }
  }
  io.setOutput('comment-url', result.commentUrl ?? '');

  if (ledger.models.length > 0 && writes) {
    const single = (m: (typeof ledger.models)[number]) => fitComment(renderReport(oneModel(ledger, m), { title: m.model, links }), 65_535);
    const gate = await publishGate(octokit, ctx, ledger, {
      sha: pr?.head ?? ctx.sha,
      failOn: inputs.failOn,
      sources: { workspace: env.workspace, configFile: settings?.configFile, workflowFile: env.workflowFile },
      summaries: new Map(ledger.models.map((m) => [m.model, single(m)])),
      detailsUrl: links.run,
    });
    for (const m of gate.messages) io.warning(`prune-guard: ${m}`);
  }

  if (inputs.mode === 'nightly') {
    const nightly = await runNightly(octokit, ctx, ledger, { inputs, workspace: env.workspace, links, io });
    await io.writeSummary(`${summaryMarkdown}\n${nightly.trendMarkdown}`);
  } else {
    await io.writeSummary(summaryMarkdown);
  }

  if (gateFails(ledger.verdict, inputs.failOn)) {
    result.failed = true;
    const failing = ledger.models.filter((m) => gateFails(m.verdict, inputs.failOn)).map((m) => m.model);
    io.setFailed(`prune-guard: ${ledger.verdict} (fail-on: ${inputs.failOn}) for ${failing.join(', ')}; see the ledger in the job summary`);
  }
  return result;
}
