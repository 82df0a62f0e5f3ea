import { markdownCode } from '../util/escape.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe } from '../errors.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import type { Ledger } from '../ledger/types.js';
import { appendHistory, emptyHistory, historyEntry, parseHistory, renderTrend, type History } from './history.js';
import type { ActionInputs } from './inputs.js';
import { httpStatus, isForbidden, type Octokit, type RunContext } from './octokit.js';
import type { Links } from './report.js';
import type { ActionIO } from './actionIO.js';

/** Marks the one issue prune-guard keeps open for failing nightly budgets. */
export const NIGHTLY_MARKER = '<!-- prune-guard:nightly -->';

interface Store {
  read(): Promise<History>;
  write(h: History): Promise<void>;
}

function fileStore(file: string): Store {
  return {
    read: async () => (fs.existsSync(file) ? parseHistory(fs.readFileSync(file, 'utf8'), file) : emptyHistory()),
    write: async (h) => {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      writeFileAtomic(file, JSON.stringify(h, null, 2) + '\n');
    },
  };
}

/** The history file on a dedicated branch through the contents API; the branch is created from this commit when missing. */
function branchStore(octokit: Octokit, ctx: RunContext, branch: string, file: string): Store {
  const { owner, repo } = ctx.repo;
  let sha: string | undefined;
  return {
    async read() {
      try {
        const { data } = await octokit.rest.repos.getContent({ owner, repo, path: file, ref: branch });
        if (Array.isArray(data) || data.type !== 'file') throw new Error(`${branch}:${file} is not a file`);
        sha = data.sha;
        return parseHistory(Buffer.from((data as { content: string }).content, 'base64').toString('utf8'), `${branch}:${file}`);
      } catch (e) {
        if (httpStatus(e) !== 404) throw e;
        try {
          await octokit.rest.git.getRef({ owner, repo, ref: `heads/${branch}` });
        } catch (e2) {
          if (httpStatus(e2) !== 404) throw e2;
          await octokit.rest.git.createRef({ owner, repo, ref: `refs/heads/${branch}`, sha: ctx.sha });
        }
        return emptyHistory();
      }
    },
    async write(h) {
      await octokit.rest.repos.createOrUpdateFileContents({
        owner,
        repo,
        path: file,
        branch,
        sha,
        message: `prune-guard history: run ${ctx.runId}`,
        content: Buffer.from(JSON.stringify(h, null, 2) + '\n').toString('base64'),
      });
    },
  };
}

function issueBody(ledger: Ledger, links: Links): string {
  const failing = ledger.models.filter((m) => m.verdict === 'fail');
  const lines = failing.map((m) => {
    const budgets = m.budgets.filter((b) => b.verdict === 'fail').map((b) => `\`${b.name}\` (${b.detail})`);
    return `- ${markdownCode(m.model)}: ${budgets.join(', ') || 'failed'}`;
  });
  return [NIGHTLY_MARKER, `The nightly prune-guard run failed a budget (${ledger.created_at}, [run](${links.run})):`, ...lines, '', 'This issue is updated by every failing nightly run.'].join('\n');
}

/** Opens the nightly issue, or updates the open one (found by label and marker), when a budget fails. */
async function reportFailure(octokit: Octokit, ctx: RunContext, ledger: Ledger, label: string, links: Links): Promise<string> {
  const { owner, repo } = ctx.repo;
  const open = await octokit.paginate(octokit.rest.issues.listForRepo, { owner, repo, state: 'open', labels: label, per_page: 100 });
  const mine = open.find((i) => !i.pull_request && i.body?.includes(NIGHTLY_MARKER));
  const body = issueBody(ledger, links);
  if (mine) {
    const { data } = await octokit.rest.issues.update({ owner, repo, issue_number: mine.number, body });
    return `updated issue ${data.html_url}`;
  }
  const { data } = await octokit.rest.issues.create({ owner, repo, title: 'prune-guard: nightly budget failing', body, labels: [label] });
  return `opened issue ${data.html_url}`;
}

/** Nightly mode: append to the history, render the trend, open or update an issue when a budget fails. */
export async function runNightly(
  octokit: Octokit,
  ctx: RunContext,
  ledger: Ledger,
  opts: { inputs: ActionInputs; workspace: string; links: Links; io: ActionIO },
): Promise<{ trendMarkdown: string }> {
  const { inputs, io } = opts;
  const local = path.resolve(opts.workspace, inputs.historyFile);
  const store = inputs.historyBranch ? branchStore(octokit, ctx, inputs.historyBranch, inputs.historyFile) : fileStore(local);
  let history = emptyHistory();
  try {
    history = appendHistory(await store.read(), historyEntry(ledger, ctx.sha, ctx.runId));
    await store.write(history);
    if (inputs.historyBranch) await fileStore(local).write(history);
    io.info(`prune-guard: history has ${history.entries.length} entries (${inputs.historyBranch ? `branch ${inputs.historyBranch}:` : ''}${inputs.historyFile})`);
  } catch (e) {
    if (!isForbidden(e)) throw e;
    history = appendHistory(history, historyEntry(ledger, ctx.sha, ctx.runId));
    io.warning(`prune-guard: could not write the history to branch ${inputs.historyBranch} (needs \`contents: write\`): ${describe(e)}`);
  }
  if (ledger.verdict === 'fail' && inputs.githubToken) {
    try {
      io.info(`prune-guard: ${await reportFailure(octokit, ctx, ledger, inputs.issueLabel, opts.links)}`);
    } catch (e) {
      if (!isForbidden(e)) throw e;
      io.warning('prune-guard: could not open or update the nightly issue (needs `issues: write`)');
    }
  }
  return { trendMarkdown: renderTrend(history) };
}
