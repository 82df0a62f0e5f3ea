import * as os from 'node:os';
import * as core from '@actions/core';
import * as github from '@actions/github';
import { describe, isUserError } from '../errors.js';
import { readInputs } from './inputs.js';
import type { RunContext } from './octokit.js';
import { run } from './run.js';

/** `owner/repo/.github/workflows/ci.yml@refs/heads/main` -> `.github/workflows/ci.yml` */
function workflowFile(ref: string | undefined): string | undefined {
  const m = ref ? /^[^/]+\/[^/]+\/(.+?)@/.exec(ref) : null;
  return m?.[1];
}

/** Wires @actions/core and @actions/github to the pure `run`; user errors fail the step with one line. */
export async function entry(): Promise<void> {
  try {
    const inputs = readInputs((name) => core.getInput(name));
    const octokit = github.getOctokit(inputs.githubToken || 'no-token');
    const ctx: RunContext = {
      eventName: github.context.eventName,
      payload: github.context.payload,
      repo: github.context.repo,
      sha: github.context.sha,
      runId: github.context.runId,
      serverUrl: github.context.serverUrl,
    };
    await run(inputs, octokit, ctx, {
      workspace: process.env.GITHUB_WORKSPACE || process.cwd(),
      temp: process.env.RUNNER_TEMP || os.tmpdir(),
      workflowFile: workflowFile(process.env.GITHUB_WORKFLOW_REF),
    }, {
      info: (m) => core.info(m),
      warning: (m) => core.warning(m),
      setOutput: (n, v) => core.setOutput(n, v),
      setFailed: (m) => core.setFailed(m),
      writeSummary: async (md) => {
        if (process.env.GITHUB_STEP_SUMMARY) await core.summary.addRaw(md, true).write();
      },
    });
  } catch (e) {
    if (isUserError(e)) core.setFailed(`prune-guard: ${e.message}`);
    else core.setFailed(`prune-guard: internal error (please report it): ${e instanceof Error ? e.stack : describe(e)}`);
  }
}

