import { getOctokit } from '@actions/github';
import { readInputs } from '../../src/github/inputs.js';
import type { RunContext } from '../../src/github/octokit.js';
import { run, type ActionResult } from '../../src/github/run.js';
import { tempDir } from '../support/fixtures.js';
import { startFakeGitHub, type ApiCall, type PrFile } from './fakeGitHub.js';

export interface InProcessRun {
  result: ActionResult;
  /** the sticky comment's body as posted */
  comment: string;
  summary: string;
  outputs: Record<string, string>;
  calls: ApiCall[];
}

/**
 * The action's `run()` in this process against the fake GitHub API: the same code path as the bundle
 * (inputs, pipeline, comment, check runs, summary) without a child process per run.
 */
export async function runInProcess(opts: { workspace: string; files: PrFile[]; payload: Record<string, unknown>; inputs: Record<string, string>; sha: string }): Promise<InProcessRun> {
  const api = await startFakeGitHub({ files: opts.files });
  try {
    const inputs = readInputs((name) => opts.inputs[name] ?? '');
    // the runner's proxy-aware fetch is built for api.github.com; the fake API is plain loopback HTTP
    const octokit = getOctokit(inputs.githubToken, { baseUrl: api.url, request: { fetch: globalThis.fetch } });
    const ctx: RunContext = { eventName: 'pull_request', payload: opts.payload, repo: { owner: 'octo', repo: 'models' }, sha: opts.sha, runId: 4242, serverUrl: 'https://github.test' };
    const outputs: Record<string, string> = {};
    let summary = '';
    const result = await run(inputs, octokit, ctx, { workspace: opts.workspace, temp: tempDir('prune-guard-runner-'), workflowFile: '.github/workflows/prune-guard.yml' }, {
      info: () => {},
      warning: () => {},
      setOutput: (name, value) => (outputs[name] = value),
      setFailed: () => {},
      writeSummary: async (md) => {
        summary = md;
      },
    });
    return { result, comment: api.state.comments[0]?.body ?? '', summary, outputs, calls: api.calls };
  } finally {
    await api.close();
  }
}
