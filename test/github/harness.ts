import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getOctokit } from '@actions/github';
import { isUserError } from '../../src/errors.js';
import { readInputs } from '../../src/github/inputs.js';
import { run, type ActionResult } from '../../src/github/run.js';
import { ROOT, fixture, tempDir } from '../support/fixtures.js';

export interface ActionRun {
  code: number | null;
  stdout: string;
  stderr: string;
  summary: string;
  outputs: Record<string, string>;
}

/** Outputs written by core.setOutput: `name<<DELIM\nvalue\nDELIM` blocks. */
function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /^(.+?)<<(.+)\n([\s\S]*?)\n\2$/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) out[m[1]] = m[3];
  return out;
}

export interface ActionOptions {
  workspace: string;
  apiUrl: string;
  eventName: string;
  payload: unknown;
  inputs: Record<string, string>;
  sha: string;
  runId?: number;
}

/** What src/github/run.ts reported through its ActionIO, as recorded by `runActionInProcess`. */
export interface InProcessRun {
  /** `run()`'s result; undefined when it threw a user error */
  result?: ActionResult;
  failed: string[];
  warnings: string[];
  info: string[];
  summary: string;
  outputs: Record<string, string>;
}

/**
 * `run()` of src/github/run.ts in this process, wired as src/github/entry.ts wires it (inputs read by
 * readInputs, an Octokit on `apiUrl`, a user error failing the step in one line), recording what it
 * reports. Any other error is a bug and rejects.
 */
export async function runActionInProcess(opts: ActionOptions): Promise<InProcessRun> {
  const rec: InProcessRun = { failed: [], warnings: [], info: [], summary: '', outputs: {} };
  try {
    const inputs = readInputs((name) => (opts.inputs[name] ?? '').trim());
    const octokit = getOctokit(inputs.githubToken || 'no-token', { baseUrl: opts.apiUrl });
    const ctx = { eventName: opts.eventName, payload: opts.payload as Record<string, unknown>, repo: { owner: 'octo', repo: 'models' }, sha: opts.sha, runId: opts.runId ?? 4242, serverUrl: 'https://github.test' };
    rec.result = await run(inputs, octokit, ctx, { workspace: opts.workspace, temp: tempDir('prune-guard-runner-'), workflowFile: '.github/workflows/prune-guard.yml' }, {
      info: (m) => rec.info.push(m),
      warning: (m) => rec.warnings.push(m),
      setOutput: (n, v) => (rec.outputs[n] = v),
      setFailed: (m) => rec.failed.push(m),
      writeSummary: async (md) => void (rec.summary += md),
    });
  } catch (e) {
    if (!isUserError(e)) throw e;
    rec.failed.push(`prune-guard: ${e.message}`);
  }
  return rec;
}

/**
 * Runs an action's dist/index.js the way the runner does: a child process with INPUT_* variables, an
 * event payload file and the GITHUB_* variables, against `apiUrl`. Async spawn, so an in-process fake
 * API can answer while it runs.
 */
export function runActionDist(opts: ActionOptions & { actionDir: string }): Promise<ActionRun> {
  const scratch = tempDir('prune-guard-runner-');
  const eventPath = path.join(scratch, 'event.json');
  fs.writeFileSync(eventPath, JSON.stringify(opts.payload));
  const summaryPath = path.join(scratch, 'summary.md');
  const outputPath = path.join(scratch, 'output.txt');
  fs.writeFileSync(summaryPath, '');
  fs.writeFileSync(outputPath, '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GITHUB_ACTIONS: 'true',
    GITHUB_API_URL: opts.apiUrl,
    GITHUB_SERVER_URL: 'https://github.test',
    GITHUB_EVENT_NAME: opts.eventName,
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_REPOSITORY: 'octo/models',
    GITHUB_SHA: opts.sha,
    GITHUB_RUN_ID: String(opts.runId ?? 4242),
    GITHUB_WORKSPACE: opts.workspace,
    GITHUB_STEP_SUMMARY: summaryPath,
    GITHUB_OUTPUT: outputPath,
    GITHUB_WORKFLOW_REF: 'octo/models/.github/workflows/prune-guard.yml@refs/pull/7/merge',
    RUNNER_TEMP: scratch,
  };
  for (const [k, v] of Object.entries(opts.inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(opts.actionDir, 'dist/index.js')], { cwd: opts.workspace, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, stdout, stderr, summary: fs.readFileSync(summaryPath, 'utf8'), outputs: parseOutputs(fs.readFileSync(outputPath, 'utf8')) }),
    );
  });
}

/** The action as a user's workflow gets it: action.yml and dist/ only, no node_modules anywhere above it. */
export function copyAction(): string {
  const dir = tempDir('prune-guard-action-');
  fs.copyFileSync(path.join(ROOT, 'action.yml'), path.join(dir, 'action.yml'));
  fs.cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
  return dir;
}

const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();

export const FAST_CONFIG = 'sparsity: 0.5\nbatch-sizes: [1]\nlatency: { warmup: 1, runs: 3, threads: 1 }\neval-batch-size: 512\nbudgets:\n  accuracy-drop: 50pt\n  class-accuracy-drop: 100pt\n  ece-increase: 100pt\n  latency-regression: 100\n';

/**
 * A repository with a pull request: the base commit has models/classifier.onnx (the MLP) and an
 * untouched models/other.onnx; the head commit replaces the classifier with the CNN.
 */
export function prRepo(extraFiles: Record<string, string> = {}): { dir: string; base: string; head: string } {
  const dir = tempDir('prune-guard-repo-');
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'user.email', 'ci@example.com');
  git(dir, 'config', 'user.name', 'ci');
  fs.mkdirSync(path.join(dir, 'models'));
  fs.copyFileSync(fixture('mlp.onnx'), path.join(dir, 'models/classifier.onnx'));
  fs.copyFileSync(fixture('mlp.onnx'), path.join(dir, 'models/other.onnx'));
  fs.writeFileSync(path.join(dir, '.prune-guard.yml'), FAST_CONFIG);
  for (const [name, text] of Object.entries(extraFiles)) fs.writeFileSync(path.join(dir, name), text);
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'base');
  const base = git(dir, 'rev-parse', 'HEAD');
  fs.copyFileSync(fixture('cnn-bn.onnx'), path.join(dir, 'models/classifier.onnx'));
  git(dir, 'commit', '-q', '-am', 'head');
  const head = git(dir, 'rev-parse', 'HEAD');
  return { dir, base, head };
}

export const prPayload = (base: string, head: string, number = 7) => ({
  action: 'synchronize',
  number,
  pull_request: { number, base: { sha: base, ref: 'main' }, head: { sha: head, ref: 'feature' } },
  repository: { name: 'models', owner: { login: 'octo' } },
});

export const DATA = fixture('fmnist-calib.npz');
