import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { History } from '../../src/github/history.js';
import type { Ledger } from '../../src/ledger/types.js';
import { ROOT, tempDir } from '../support/fixtures.js';
import { route, startFakeGitHub } from './fakeGitHub.js';
import { DATA, prPayload, prRepo, runAction, type ActionRun } from './harness.js';

const common = { models: 'models/*.onnx', data: DATA, 'github-token': 'test-token' };
const readLedger = (file: string): Ledger => JSON.parse(fs.readFileSync(file, 'utf8')) as Ledger;

describe('a matrix of shards, then one aggregate comment', () => {
  let api: Awaited<ReturnType<typeof startFakeGitHub>>;
  let repo: ReturnType<typeof prRepo>;
  const shards: ActionRun[] = [];

  beforeAll(async () => {
    repo = prRepo();
    api = await startFakeGitHub();
    for (const shard of ['1/2', '2/2']) {
      shards.push(await runAction({ actionDir: ROOT, workspace: repo.dir, apiUrl: api.url, eventName: 'push', payload: { ref: 'refs/heads/main' }, inputs: { ...common, shard, out: `out-${shard[0]}` }, sha: repo.head }));
    }
  }, 180_000);
  afterAll(async () => api?.close());

  it('each shard checks its own slice of all matching models and reports a check run per model on the pushed commit', () => {
    expect(shards.map((s) => s.code)).toEqual([0, 0]);
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
    const r = await runAction({ actionDir: ROOT, workspace: repo.dir, apiUrl: api.url, eventName: 'pull_request', payload: prPayload(repo.base, repo.head), inputs: { ...common, mode: 'aggregate', ledgers: downloaded }, sha: 'merge0009' });
    expect(r.code, r.stdout).toBe(0);
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
    const r = await runAction({ actionDir: ROOT, workspace: repo.dir, apiUrl: api.url, eventName: 'workflow_run', payload, inputs: { ...common, mode: 'aggregate', ledgers: downloaded, 'pull-request': '7' }, sha: 'main0001' });
    expect(r.code, r.stdout).toBe(0);
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
    const first = await runAction({ actionDir: ROOT, workspace: repo.dir, apiUrl: api.url, eventName: 'schedule', payload: { schedule: '0 3 * * *' }, inputs, sha: repo.head, runId: 1 });
    expect(first.code).toBe(1);
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
    const second = await runAction({ actionDir: ROOT, workspace: repo.dir, apiUrl: api.url, eventName: 'schedule', payload: { schedule: '0 3 * * *' }, inputs, sha: repo.head, runId: 2 });
    expect(second.code).toBe(1);
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

describe('onnxruntime-path', () => {
  let api: Awaited<ReturnType<typeof startFakeGitHub>>;
  afterAll(async () => api?.close());

  it('loads onnxruntime from an installed onnxruntime-node, and names the input when that folder has none', async () => {
    const repo = prRepo();
    api = await startFakeGitHub();
    const base = { ...common, models: 'models/other.onnx' };
    const ok = await runAction({ actionDir: ROOT, workspace: repo.dir, apiUrl: api.url, eventName: 'push', payload: {}, inputs: { ...base, 'onnxruntime-path': path.join(ROOT, 'node_modules/onnxruntime-node') }, sha: repo.head });
    expect(ok.code, ok.stdout).toBe(0);
    expect(readLedger(ok.outputs.ledger).models[0].steps[1].accuracy).toBeGreaterThan(0.5);
    const bad = await runAction({ actionDir: ROOT, workspace: repo.dir, apiUrl: api.url, eventName: 'push', payload: {}, inputs: { ...base, 'onnxruntime-path': repo.dir }, sha: repo.head });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`::error::prune-guard: PRUNE_GUARD_ONNXRUNTIME_PATH=${repo.dir}: no onnxruntime-node binding for linux-x64`);
  }, 120_000);
});
