import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { ROOT } from '../support/fixtures.js';
import { startFakeGitHub, route, type ApiCall } from './fakeGitHub.js';
import { copyAction, DATA, prPayload, prRepo, runAction, type ActionRun } from './harness.js';

const PR_FILES = [
  { filename: 'README.md', status: 'modified' },
  { filename: 'src/train.py', status: 'added' },
  // the changed model is on the second page: found only when pagination is followed
  { filename: 'models/classifier.onnx', status: 'modified' },
];

const inputs = (extra: Record<string, string> = {}) => ({ models: 'models/**/*.onnx', data: DATA, 'github-token': 'test-token', ...extra });
const FILES = ['GET /repos/octo/models/pulls/7/files', 'GET /repos/octo/models/pulls/7/files?page=2'];

describe('the action on a pull request (dist/index.js copied without node_modules, fake GitHub API)', () => {
  let api: Awaited<ReturnType<typeof startFakeGitHub>>;
  let action: string;
  let repo: ReturnType<typeof prRepo>;
  let first: ActionRun;
  let firstCalls: ApiCall[];

  beforeAll(async () => {
    action = copyAction();
    repo = prRepo();
    api = await startFakeGitHub({ files: PR_FILES, pageSize: 2 });
    first = await runAction({ actionDir: action, workspace: repo.dir, apiUrl: api.url, eventName: 'pull_request', payload: prPayload(repo.base, repo.head), inputs: inputs(), sha: 'merge0000' });
    firstCalls = [...api.calls];
  }, 180_000);

  afterAll(async () => api?.close());

  it('first run: follows the PR files pages, creates one comment and a check run on the head commit', () => {
    expect(first.stderr).toBe('');
    expect(first.code, first.stdout).toBe(0);
    expect(firstCalls.map(route)).toEqual([...FILES, 'GET /repos/octo/models/issues/7/comments', 'POST /repos/octo/models/issues/7/comments', 'POST /repos/octo/models/check-runs']);
    const check = firstCalls.at(-1)!.body;
    expect(check).toMatchObject({ name: 'prune-guard / models/classifier.onnx', head_sha: repo.head, status: 'completed', conclusion: 'success' });
    expect(first.outputs['comment-url']).toBe(api.state.comments[0].html_url);
  });

  it('the comment carries the marker, the verdict over both comparisons, the model\'s fold with base, and links, and fits the limit', () => {
    const body: string = firstCalls[3].body.body;
    expect(body.startsWith('<!-- prune-guard -->')).toBe(true);
    expect(body).toContain('models/classifier.onnx');
    expect(body).not.toContain('models/other.onnx');
    // the verdict line before any fold counts the budgets of both comparisons
    expect(body.slice(0, body.indexOf('<details>'))).toMatch(/\*\*Every budget passes\*\*: \d+ budgets on `models\/classifier\.onnx` \(dense → pruned and base → head\)/);
    expect(body).toContain('<details><summary>✅ <code>models/classifier.onnx</code> · ');
    expect(body).toContain('| Base | Head | Change |');
    expect(body).toContain(`at ${repo.base.slice(0, 12)} (merge base)`);
    expect(body).toContain('https://github.test/octo/models/actions/runs/4242');
    expect(body.length).toBeLessThanOrEqual(65_536);
  });

  it('the ledger holds head and base, each measured; the job summary and outputs match', () => {
    const ledger = JSON.parse(fs.readFileSync(first.outputs.ledger, 'utf8')) as Ledger;
    expect(validateLedger(ledger)).toEqual([]);
    expect(ledger.models.map((m) => m.model)).toEqual(['models/classifier.onnx']);
    const m = ledger.models[0];
    expect(m.vs_base?.ref).toBe(repo.base);
    // base is the MLP (dense weights only in Gemm/MatMul), head the CNN: different models, measured separately
    expect(m.vs_base!.steps[0].params).not.toBe(m.steps[0].params);
    expect(m.vs_base!.steps.at(-1)!.accuracy).toBeGreaterThan(0.5);
    expect(m.vs_base!.budgets.map((b) => b.name)).toEqual(['accuracy-drop', 'class-accuracy-drop', 'ece-increase', 'latency-regression']);
    expect(m.budgets.map((b) => b.name)).not.toContain('latency-regression');
    // judged on base and head measured again together: same accuracy as their own runs, latency interleaved
    const [pairBase, pairHead] = m.vs_base!.pair!;
    expect(pairBase.accuracy).toBe(m.vs_base!.steps.at(-1)!.accuracy);
    expect(pairHead.accuracy).toBe(m.steps.at(-1)!.accuracy);
    expect(m.vs_base!.budgets.find((b) => b.name === 'latency-regression')!.actual).toBeCloseTo(pairHead.latency!.p50_ms / pairBase.latency!.p50_ms - 1, 9);
    expect(first.outputs.verdict).toBe(ledger.verdict);
    expect(JSON.parse(first.outputs['pruned-models'])).toEqual([m.pruned]);
    expect(fs.existsSync(path.join(repo.dir, m.pruned))).toBe(true);
    expect(first.summary).toContain('<!-- prune-guard -->');
    expect(first.summary).toContain('| Base | Head | Change |');
  });

  it('second run: updates the same comment in place, never a second one', async () => {
    api.calls.length = 0;
    const second = await runAction({ actionDir: action, workspace: repo.dir, apiUrl: api.url, eventName: 'pull_request', payload: prPayload(repo.base, repo.head), inputs: inputs(), sha: 'merge0001' });
    expect(second.code, second.stdout).toBe(0);
    const id = api.state.comments[0].id;
    expect(api.calls.map(route)).toEqual([...FILES, 'GET /repos/octo/models/issues/7/comments', `PATCH /repos/octo/models/issues/comments/${id}`, 'POST /repos/octo/models/check-runs']);
    expect(api.state.comments).toHaveLength(1);
    expect(api.state.comments[0].body).toContain('<!-- prune-guard -->');
    expect(second.outputs['comment-url']).toBe(api.state.comments[0].html_url);
  }, 180_000);
});

describe('the gate', () => {
  let api: Awaited<ReturnType<typeof startFakeGitHub>>;
  afterAll(async () => api?.close());

  it('a failed budget fails the step (exit 1) and the check run, annotated at the config line that set it', async () => {
    const strict = 'sparsity: 0.95\nbatch-sizes: [1]\nlatency: { warmup: 1, runs: 3 }\nbudgets:\n  class-accuracy-drop: 100pt\n  accuracy-drop: 0.001\n';
    const repo = prRepo({ 'strict.yml': strict });
    api = await startFakeGitHub({ files: [{ filename: 'models/classifier.onnx', status: 'modified' }] });
    const r = await runAction({ actionDir: ROOT, workspace: repo.dir, apiUrl: api.url, eventName: 'pull_request', payload: prPayload(repo.base, repo.head), inputs: inputs({ config: 'strict.yml' }), sha: 'merge0002' });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/::error::prune-guard: fail \(fail-on: fail\) for models\/classifier.onnx/);
    expect(r.outputs.verdict).toBe('fail');
    const check = api.calls.find((c) => route(c) === 'POST /repos/octo/models/check-runs')!.body;
    expect(check.conclusion).toBe('failure');
    expect(check.output.title).toMatch(/^FAIL: /);
    const accuracy = check.output.annotations.find((a: { title: string }) => /^models\/classifier\.onnx: accuracy-drop \d+\.\d\d pt > 0\.1 pt$/.test(a.title));
    expect(accuracy).toMatchObject({ path: 'strict.yml', start_line: 6, end_line: 6, annotation_level: 'failure' });
    expect(accuracy.message).toMatch(/^accuracy-drop \(dense → pruned\) \d+\.\d\d pt, limit ≤ 0\.1 pt, \d+\.\d\d pt over/);
  }, 180_000);

  it('a read-only token: 403 on the comment and on check runs falls back to a commit status, the summary and the ledger file', async () => {
    const repo = prRepo();
    api = await startFakeGitHub({ files: [{ filename: 'models/classifier.onnx', status: 'modified' }], forbid: new Set(['comment', 'checks']) });
    const r = await runAction({ actionDir: ROOT, workspace: repo.dir, apiUrl: api.url, eventName: 'pull_request', payload: prPayload(repo.base, repo.head), inputs: inputs(), sha: 'merge0003' });
    expect(r.code, r.stdout).toBe(0);
    expect(api.calls.map(route)).toEqual([
      'GET /repos/octo/models/pulls/7/files',
      'GET /repos/octo/models/issues/7/comments',
      'POST /repos/octo/models/issues/7/comments',
      'POST /repos/octo/models/check-runs',
      `POST /repos/octo/models/statuses/${repo.head}`,
    ]);
    expect(api.calls.at(-1)!.body).toMatchObject({ context: 'prune-guard / models/classifier.onnx', state: 'success' });
    expect(r.stdout).toMatch(/::warning::prune-guard: could not comment on #7 \(HTTP 403\).*workflow_run/);
    expect(r.outputs['comment-url']).toBe('');
    expect(r.summary).toContain('models/classifier.onnx');
    expect(fs.existsSync(r.outputs.ledger)).toBe(true);
  }, 180_000);

  it('a checkout without the base commit fails with the fetch-depth hint', async () => {
    const repo = prRepo();
    api = await startFakeGitHub({ files: [{ filename: 'models/classifier.onnx', status: 'modified' }] });
    const missing = 'f'.repeat(40);
    const r = await runAction({ actionDir: ROOT, workspace: repo.dir, apiUrl: api.url, eventName: 'pull_request', payload: prPayload(missing, repo.head), inputs: inputs(), sha: 'merge0004' });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`::error::prune-guard: git: commit ${missing.slice(0, 12)} is not in the checkout; the checkout is too shallow: set \`fetch-depth: 0\``);
  }, 60_000);
});
