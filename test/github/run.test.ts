/**
 * The action's logic, `run()` of src/github/run.ts in process against a fake GitHub API: comments,
 * check runs, the gate, read-only tokens, shards, aggregation and the nightly history. The built
 * dist/index.js is exercised end to end in e2e.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { History } from '../../src/github/history.js';
import type { Ledger } from '../../src/ledger/types.js';
import { tempDir } from '../support/fixtures.js';
import { route, startFakeGitHub } from './fakeGitHub.js';
import { DATA, prPayload, prRepo, runActionInProcess, type InProcessRun } from './harness.js';

const common = { models: 'models/*.onnx', data: DATA, 'github-token': 'test-token' };
const readLedger = (file: string): Ledger => JSON.parse(fs.readFileSync(file, 'utf8')) as Ledger;
const CHANGED = [{ filename: 'models/classifier.onnx', status: 'modified' }];

describe('a pull request run again', () => {
  let api: Awaited<ReturnType<typeof startFakeGitHub>>;
  let repo: ReturnType<typeof prRepo>;
  let first: InProcessRun;

  beforeAll(async () => {
    repo = prRepo();
    api = await startFakeGitHub({ files: CHANGED });
    first = await runActionInProcess({ workspace: repo.dir, apiUrl: api.url, eventName: 'pull_request', payload: prPayload(repo.base, repo.head), inputs: common, sha: 'merge0000' });
  }, 180_000);
  afterAll(async () => api?.close());

  it('updates the same comment in place, never a second one', async () => {
    expect(first.failed).toEqual([]);
    expect(api.state.comments).toHaveLength(1);
    const id = api.state.comments[0].id;
    const firstBody = api.state.comments[0].body;
    api.calls.length = 0;
    const second = await runActionInProcess({ workspace: repo.dir, apiUrl: api.url, eventName: 'pull_request', payload: prPayload(repo.base, repo.head), inputs: common, sha: 'merge0001' });
    expect(second.failed).toEqual([]);
    expect(api.calls.map(route)).toEqual(['GET /repos/octo/models/pulls/7/files', 'GET /repos/octo/models/issues/7/comments', `PATCH /repos/octo/models/issues/comments/${id}`, 'POST /repos/octo/models/check-runs']);
    expect(api.state.comments).toHaveLength(1);
    expect(api.state.comments[0].body.startsWith('<!-- prune-guard -->')).toBe(true);
    // the same commits measured again: the same models and verdicts in the comment
    expect(api.state.comments[0].body).toContain('models/classifier.onnx');
    expect(firstBody).toContain('models/classifier.onnx');
    expect(second.outputs['comment-url']).toBe(api.state.comments[0].html_url);
    expect(second.result!.commentUrl).toBe(api.state.comments[0].html_url);
  }, 180_000);
});

describe('the gate', () => {
  let api: Awaited<ReturnType<typeof startFakeGitHub>>;
  afterAll(async () => api?.close());

  it('a failed budget fails the step and the check run, annotated at the config line that set it', async () => {
    const strict = 'sparsity: 0.95\nbatch-sizes: [1]\nlatency: { warmup: 1, runs: 3 }\nbudgets:\n  class-accuracy-drop: 100pt\n  accuracy-drop: 0.001\n';
    const repo = prRepo({ 'strict.yml': strict });
    api = await startFakeGitHub({ files: CHANGED });
    const r = await runActionInProcess({ workspace: repo.dir, apiUrl: api.url, eventName: 'pull_request', payload: prPayload(repo.base, repo.head), inputs: { ...common, config: 'strict.yml' }, sha: 'merge0002' });
    expect(r.failed).toEqual(['prune-guard: fail (fail-on: fail) for models/classifier.onnx; see the ledger in the job summary']);
    expect(r.result!.failed).toBe(true);
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
    api = await startFakeGitHub({ files: CHANGED, forbid: new Set(['comment', 'checks']) });
    const r = await runActionInProcess({ workspace: repo.dir, apiUrl: api.url, eventName: 'pull_request', payload: prPayload(repo.base, repo.head), inputs: common, sha: 'merge0003' });
    expect(r.failed).toEqual([]);
    expect(api.calls.map(route)).toEqual([
      'GET /repos/octo/models/pulls/7/files',
      'GET /repos/octo/models/issues/7/comments',
      'POST /repos/octo/models/issues/7/comments',
      'POST /repos/octo/models/check-runs',
      `POST /repos/octo/models/statuses/${repo.head}`,
    ]);
    expect(api.calls.at(-1)!.body).toMatchObject({ context: 'prune-guard / models/classifier.onnx', state: 'success' });
    expect(r.warnings.filter((w) => /^prune-guard: could not comment on #7 \(HTTP 403\).*workflow_run/.test(w))).toHaveLength(1);
    expect(r.outputs['comment-url']).toBe('');
    expect(r.summary).toContain('models/classifier.onnx');
    expect(fs.existsSync(r.outputs.ledger)).toBe(true);
  }, 180_000);
});

describe('a matrix of shards, then one aggregate comment', () => {
  let api: Awaited<ReturnType<typeof startFakeGitHub>>;
  let repo: ReturnType<typeof prRepo>;
  const shards: InProcessRun[] = [];

  beforeAll(async () => {
    repo = prRepo();
    api = await startFakeGitHub();
    for (const shard of ['1/2', '2/2']) {
      shards.push(await runActionInProcess({ workspace: repo.dir, apiUrl: api.url, eventName: 'push', payload: { ref: 'refs/heads/main' }, inputs: { ...common, shard, out: `out-${shard[0]}` }, sha: repo.head }));
    }
  }, 180_000);
  afterAll(async () => api?.close());

  it('each shard checks its own slice of all matching models and reports a check run per model on the pushed commit', () => {
    expect(shards.map((s) => s.failed)).toEqual([[], []]);
    const models = shards.map((s) => readLedger(s.outputs.ledger).models.map((m) => m.model));
    expect(models).toEqual([['models/classifier.onnx'], ['models/other.onnx']]);
    expect(api.calls.map(route)).toEqual(['POST /repos/octo/models/check-runs', 'POST /repos/octo/models/check-runs']);
    expect(api.calls.map((c) => [c.body.name, c.body.head_sha])).toEqual([
      ['prune-guard / models/classifier.onnx', repo.head],
      ['prune-guard / models/other.onnx', repo.head],
    ]);
  });

  it('aggregate merges the downloaded ledgers into one comment and one verdict', async () => {
    const downloaded = tempDir();
    for (const [i, s] of shards.entries()) fs.cpSync(path.dirname(s.outputs.ledger), path.join(downloaded, `prune-guard-${i + 1}`), { recursive: true });
    api.calls.length = 0;
    const r = await runActionInProcess({ workspace: repo.dir, apiUrl: api.url, eventName: 'pull_request', payload: prPayload(repo.base, repo.head), inputs: { ...common, mode: 'aggregate', ledgers: downloaded }, sha: 'merge0009' });
    expect(r.failed).toEqual([]);
    expect(api.calls.map(route)).toEqual(['GET /repos/octo/models/issues/7/comments', 'POST /repos/octo/models/issues/7/comments', 'POST /repos/octo/models/check-runs', 'POST /repos/octo/models/check-runs']);
    const merged = readLedger(r.outputs.ledger);
    expect(merged.models.map((m) => m.model)).toEqual(['models/classifier.onnx', 'models/other.onnx']);
    const verdicts = shards.map((s) => readLedger(s.outputs.ledger).verdict);
    expect(merged.verdict).toBe(verdicts.includes('fail') ? 'fail' : verdicts.includes('warn') ? 'warn' : 'pass');
    const body: string = api.calls[1].body.body;
    expect(body).toContain('2 models from 2 shards');
    // one fold per model, each summarised by its verdict and what pruning did
    expect(body.match(/<details><summary>(✅|⚠️|❌) <code>models\/(classifier|other)\.onnx<\/code> · /g)).toHaveLength(2);
  }, 60_000);

  it('a workflow_run follow-up posts the downloaded ledgers to the pull request named by the input (the fork flow)', async () => {
    const downloaded = tempDir();
    fs.cpSync(path.dirname(shards[0].outputs.ledger), path.join(downloaded, 'prune-guard'), { recursive: true });
    api.calls.length = 0;
    const payload = { workflow_run: { head_sha: repo.head, pull_requests: [], event: 'pull_request' } };
    const r = await runActionInProcess({ workspace: repo.dir, apiUrl: api.url, eventName: 'workflow_run', payload, inputs: { ...common, mode: 'aggregate', ledgers: downloaded, 'pull-request': '7' }, sha: 'main0001' });
    expect(r.failed).toEqual([]);
    const id = api.state.comments[0].id;
    expect(api.calls.map(route)).toEqual(['GET /repos/octo/models/issues/7/comments', `PATCH /repos/octo/models/issues/comments/${id}`, 'POST /repos/octo/models/check-runs']);
    expect(api.calls[2].body).toMatchObject({ name: 'prune-guard / models/classifier.onnx', head_sha: repo.head });
  }, 60_000);
});

describe('nightly', () => {
  let api: Awaited<ReturnType<typeof startFakeGitHub>>;
  afterAll(async () => api?.close());

  it('appends to the history on its branch, shows the trend and opens, then updates, one issue while a budget fails', async () => {
    const repo = prRepo();
    api = await startFakeGitHub();
    const inputs = { ...common, mode: 'nightly', 'history-branch': 'prune-guard-history', budgets: 'accuracy-drop=0.0001', 'target-sparsity': '0.9' };
    const first = await runActionInProcess({ workspace: repo.dir, apiUrl: api.url, eventName: 'schedule', payload: { schedule: '0 3 * * *' }, inputs, sha: repo.head, runId: 1 });
    expect(first.result!.failed).toBe(true);
    expect(api.calls.map(route)).toEqual([
      'POST /repos/octo/models/check-runs',
      'POST /repos/octo/models/check-runs',
      'GET /repos/octo/models/contents/prune-guard-history.json',
      'GET /repos/octo/models/git/ref/heads/prune-guard-history',
      'POST /repos/octo/models/git/refs',
      'PUT /repos/octo/models/contents/prune-guard-history.json',
      'GET /repos/octo/models/issues',
      'POST /repos/octo/models/issues',
    ]);
    expect(api.calls[4].body).toEqual({ ref: 'refs/heads/prune-guard-history', sha: repo.head });
    expect(api.calls[7].body.labels).toEqual(['prune-guard']);
    expect(api.calls[7].body.body).toContain('`models/classifier.onnx`: `accuracy-drop`');

    api.calls.length = 0;
    const second = await runActionInProcess({ workspace: repo.dir, apiUrl: api.url, eventName: 'schedule', payload: { schedule: '0 3 * * *' }, inputs, sha: repo.head, runId: 2 });
    expect(second.result!.failed).toBe(true);
    const issue = api.state.issues[0].number;
    expect(api.calls.map(route).slice(2)).toEqual([
      'GET /repos/octo/models/contents/prune-guard-history.json',
      'PUT /repos/octo/models/contents/prune-guard-history.json',
      'GET /repos/octo/models/issues',
      `PATCH /repos/octo/models/issues/${issue}`,
    ]);
    expect(api.calls[3].body.sha).toMatch(/^blob/);
    const stored = api.state.contents.get('prune-guard-history:prune-guard-history.json')!;
    const history = JSON.parse(Buffer.from(stored.content, 'base64').toString('utf8')) as History;
    expect(history.entries.map((e) => e.run_id)).toEqual([1, 2]);
    expect(history.entries[1].models.map((m) => m.model)).toEqual(['models/classifier.onnx', 'models/other.onnx']);
    expect(history.entries[1].models[0].failed).toContain('accuracy-drop');
    expect(second.summary).toContain('### prune-guard trend');
    expect(second.summary).toMatch(/xychart-beta\n {2}title "models\/classifier.onnx: accuracy over time"\n {2}x-axis \["[0-9-]+#1", "[0-9-]+#2"\]/);
    expect(second.summary).toMatch(/\n {2}line \[/);
  }, 180_000);
});
