import type { Ledger, ModelLedger, Verdict } from '../ledger/types.js';
import { verdictTitle } from '../ledger/renderReview.js';
import { budgetAnnotations, type BudgetSources } from './annotations.js';
import type { FAIL_ON } from './inputs.js';
import { isForbidden, type Octokit, type RunContext } from './octokit.js';

type FailOn = (typeof FAIL_ON)[number];

/** Whether the step fails: at `fail-on: fail` only a failed budget, at `warn` also a warning, at `never` nothing. */
export function gateFails(verdict: Verdict, failOn: FailOn): boolean {
  if (failOn === 'never') return false;
  return verdict === 'fail' || (failOn === 'warn' && verdict === 'warn');
}

function conclusion(verdict: Verdict, failOn: FailOn): 'success' | 'failure' | 'neutral' {
  if (gateFails(verdict, failOn)) return 'failure';
  return verdict === 'pass' ? 'success' : 'neutral';
}

export const checkName = (model: ModelLedger): string => `prune-guard / ${model.model}`;

const ANNOTATIONS_PER_REQUEST = 50;
/** GitHub refuses a commit status description longer than this. */
const STATUS_LIMIT = 140;

/** The title cut at a budget boundary with "…", never mid-number, to fit a commit status. */
export function statusDescription(title: string): string {
  if (title.length <= STATUS_LIMIT) return title;
  const cut = title.slice(0, STATUS_LIMIT - 1);
  const at = Math.max(cut.lastIndexOf('; '), cut.lastIndexOf(', '));
  return `${at > 0 ? cut.slice(0, at) : cut}…`;
}
const SUMMARY_LIMIT = 65_535;

export interface GateReport {
  /** 'check' when check runs were created, 'status' after the commit-status fallback, 'none' when neither was allowed */
  via: 'check' | 'status' | 'none';
  messages: string[];
}

/**
 * One check run per model (`prune-guard / <model>`) with the ledger as summary and annotations on the
 * lines that set violated budgets. A token without `checks: write` gets a commit status per model
 * instead; one without `statuses: write` either only loses the status, never the run.
 */
export async function publishGate(
  octokit: Octokit,
  ctx: RunContext,
  ledger: Ledger,
  opts: { sha: string; failOn: FailOn; sources: BudgetSources; summaries: Map<string, string>; detailsUrl?: string },
): Promise<GateReport> {
  const { owner, repo } = ctx.repo;
  const messages: string[] = [];
  let via: GateReport['via'] = 'check';
  for (const model of ledger.models) {
    const name = checkName(model);
    const state = conclusion(model.verdict, opts.failOn);
    const title = verdictTitle(model);
    if (via === 'check') {
      const annotations = budgetAnnotations(model, opts.sources);
      const summary = (opts.summaries.get(model.model) ?? title).slice(0, SUMMARY_LIMIT);
      try {
        const { data } = await octokit.rest.checks.create({
          owner,
          repo,
          name,
          head_sha: opts.sha,
          status: 'completed',
          conclusion: state,
          details_url: opts.detailsUrl,
          output: { title, summary, annotations: annotations.slice(0, ANNOTATIONS_PER_REQUEST) },
        });
        for (let i = ANNOTATIONS_PER_REQUEST; i < annotations.length; i += ANNOTATIONS_PER_REQUEST) {
          await octokit.rest.checks.update({ owner, repo, check_run_id: data.id, output: { title, summary, annotations: annotations.slice(i, i + ANNOTATIONS_PER_REQUEST) } });
        }
        continue;
      } catch (e) {
        if (!isForbidden(e)) throw e;
        messages.push('the token may not create check runs (needs `checks: write`); reporting commit statuses instead');
        via = 'status';
      }
    }
    if (via === 'status') {
      try {
        await octokit.rest.repos.createCommitStatus({
          owner,
          repo,
          sha: opts.sha,
          context: name,
          state: state === 'failure' ? 'failure' : 'success',
          description: statusDescription(title),
          target_url: opts.detailsUrl,
        });
      } catch (e) {
        if (!isForbidden(e)) throw e;
        messages.push('the token may not create commit statuses either (needs `statuses: write`); the step result and job summary carry the verdict');
        via = 'none';
      }
    }
  }
  return { via, messages };
}
