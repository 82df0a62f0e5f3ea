import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { ROOT } from '../support/fixtures.js';
import { startFakeGitHub, route, type ApiCall } from './fakeGitHub.js';
import { copyAction, DATA, prPayload, prRepo, runActionDist, type ActionRun } from './harness.js';

const PR_FILES = [
  { filename: 'README.md', status: 'modified' },
  { filename: 'src/train.py', status: 'added' },
  // the changed model is on the second page: found only when pagination is followed
  { filename: 'models/classifier.onnx', status: 'modified' },
];

const inputs = (extra: Record<string, string> = {}) => ({ models: 'models/**/*.onnx', data: DATA, 'github-token': 'test-token', ...extra });
const FILES = ['GET /repos/octo/models/pulls/7/files', 'GET /repos/octo/models/pulls/7/files?page=2'];

describe('the built action on a pull request (dist/index.js copied without node_modules, fake GitHub API)', () => {
  let api: Awaited<ReturnType<typeof startFakeGitHub>>;
  let action: string;
  let repo: ReturnType<typeof prRepo>;
  let first: ActionRun;
  let firstCalls: ApiCall[];

  beforeAll(async () => {
    action = copyAction();
    repo = prRepo();
    api = await startFakeGitHub({ files: PR_FILES, pageSize: 2 });
    first = await runActionDist({ actionDir: action, workspace: repo.dir, apiUrl: api.url, eventName: 'pull_request', payload: prPayload(repo.base, repo.head), inputs: inputs(), sha: 'merge0000' });
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
    // latency-regression is the sequential decision over the pair's interleaved rounds
    const lat = m.vs_base!.budgets.find((b) => b.name === 'latency-regression')!;
    expect(lat.actual).toBe(lat.sequential!.estimate);
    expect(lat.sequential!.rounds).toBe(pairHead.latency!.runs);
    expect(pairBase.latency!.runs).toBe(pairHead.latency!.runs);
    expect(first.outputs.verdict).toBe(ledger.verdict);
    expect(JSON.parse(first.outputs['pruned-models'])).toEqual([m.pruned]);
    expect(fs.existsSync(path.join(repo.dir, m.pruned))).toBe(true);
    expect(first.summary).toContain('<!-- prune-guard -->');
    expect(first.summary).toContain('| Base | Head | Change |');
  });
});

describe('the entry point', () => {
  let api: Awaited<ReturnType<typeof startFakeGitHub>>;
  afterAll(async () => api?.close());

  it('a user error fails the step in one ::error:: line and exit 1: a checkout without the base commit gets the fetch-depth hint', async () => {
    const repo = prRepo();
    api = await startFakeGitHub({ files: [{ filename: 'models/classifier.onnx', status: 'modified' }] });
    const missing = 'f'.repeat(40);
    const r = await runActionDist({ actionDir: ROOT, workspace: repo.dir, apiUrl: api.url, eventName: 'pull_request', payload: prPayload(missing, repo.head), inputs: inputs(), sha: 'merge0004' });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`::error::prune-guard: git: commit ${missing.slice(0, 12)} is not in the checkout; the checkout is too shallow: set \`fetch-depth: 0\``);
  }, 60_000);

  it('onnxruntime-path: loads onnxruntime from an installed onnxruntime-node, and names the input when that folder has none', async () => {
    // the path must be in the environment before onnxruntime loads: only a fresh process shows it
    const repo = prRepo();
    api = await startFakeGitHub();
    const base = { models: 'models/other.onnx', data: DATA, 'github-token': 'test-token' };
    const ok = await runActionDist({ actionDir: ROOT, workspace: repo.dir, apiUrl: api.url, eventName: 'push', payload: {}, inputs: { ...base, 'onnxruntime-path': path.join(ROOT, 'node_modules/onnxruntime-node') }, sha: repo.head });
    expect(ok.code, ok.stdout).toBe(0);
    expect((JSON.parse(fs.readFileSync(ok.outputs.ledger, 'utf8')) as Ledger).models[0].steps[1].accuracy).toBeGreaterThan(0.5);
    const bad = await runActionDist({ actionDir: ROOT, workspace: repo.dir, apiUrl: api.url, eventName: 'push', payload: {}, inputs: { ...base, 'onnxruntime-path': repo.dir }, sha: repo.head });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`::error::prune-guard: PRUNE_GUARD_ONNXRUNTIME_PATH=${repo.dir}: no onnxruntime-node binding for linux-x64`);
  }, 120_000);
});
