/**
 * The action's models go through the CLI's guarded path, in this process: `run()` of src/github/run.ts
 * with an Octokit pointed at the fake GitHub API.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getOctokit } from '@actions/github';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionIO } from '../../src/github/actionIO.js';
import { readInputs } from '../../src/github/inputs.js';
import type { RunContext } from '../../src/github/octokit.js';
import { run, type ActionResult } from '../../src/github/run.js';
import { silentProgress } from '../../src/io/progress.js';
import { resolveBudgets } from '../../src/ledger/budgets.js';
import type { Ledger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { outputSet, visibleNames } from '../support/outputSet.js';
import { DEFAULT_CONFIG } from '../../src/config/schema.js';
import { comparePipeline } from '../../src/pipeline/compare.js';
import { runGuarded } from '../../src/pipeline/guardedRun.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { route, startFakeGitHub } from './fakeGitHub.js';
import { DATA, FAST_CONFIG, prPayload, prRepo } from './harness.js';

interface Recorded extends ActionIO {
  lines: string[];
  outputs: Record<string, string>;
  failed?: string;
  summary: string;
}

function recordingIO(): Recorded {
  const io: Recorded = {
    lines: [],
    outputs: {},
    summary: '',
    info: (m) => io.lines.push(m),
    warning: (m) => io.lines.push(`warning: ${m}`),
    setOutput: (n, v) => (io.outputs[n] = v),
    setFailed: (m) => (io.failed = m),
    writeSummary: async (md) => void (io.summary = md),
  };
  return io;
}

async function action(opts: { apiUrl: string; workspace: string; event: string; payload: Record<string, unknown>; sha: string; inputs: Record<string, string> }): Promise<{ result: ActionResult; io: Recorded }> {
  const inputs = readInputs((name) => opts.inputs[name] ?? '');
  const ctx: RunContext = { eventName: opts.event, payload: opts.payload, repo: { owner: 'octo', repo: 'models' }, sha: opts.sha, runId: 4242, serverUrl: 'https://github.test' };
  const io = recordingIO();
  const result = await run(inputs, getOctokit(inputs.githubToken, { baseUrl: opts.apiUrl }), ctx, { workspace: opts.workspace, temp: tempDir('prune-guard-runner-') }, io);
  return { result, io };
}

const readLedger = (file: string): Ledger => JSON.parse(fs.readFileSync(file, 'utf8')) as Ledger;
const files = (dir: string): string[] => (fs.readdirSync(dir, { recursive: true }) as string[]).map((n) => n.split(path.sep).join('/')).sort();

/** The envelope a ledger reader relies on: every top-level key but the models, and the runtime's keys. */
function envelopeShape(l: Ledger): { keys: string[]; runtime: string[]; schema: string; tool: string } {
  return { keys: Object.keys(l).filter((k) => k !== 'models'), runtime: Object.keys(l.runtime), schema: l.schema, tool: l.tool.name };
}

describe('the action with a time budget (run() in process, fake GitHub API)', () => {
  let api: Awaited<ReturnType<typeof startFakeGitHub>>;
  let repo: ReturnType<typeof prRepo>;
  let first: Awaited<ReturnType<typeof action>>;

  beforeAll(async () => {
    // both models change in the pull request; neither can finish in a millisecond
    repo = prRepo({ '.prune-guard.yml': `${FAST_CONFIG}time-budget: 0.001\n` });
    api = await startFakeGitHub({ files: [{ filename: 'models/classifier.onnx', status: 'modified' }, { filename: 'models/other.onnx', status: 'modified' }] });
    first = await action({ apiUrl: api.url, workspace: repo.dir, event: 'pull_request', payload: prPayload(repo.base, repo.head), sha: 'merge0000', inputs: { models: 'models/**/*.onnx', data: DATA, 'github-token': 'test-token' } });
  }, 120_000);
  afterAll(async () => api?.close());

  it('reports each model that ran out as fail with timed_out in the merged ledger, and fails the step', () => {
    const ledger = readLedger(first.result.ledgerPath);
    expect(validateLedger(ledger)).toEqual([]);
    expect(ledger.verdict).toBe('fail');
    expect(ledger.models).toEqual([]);
    expect(ledger.timed_out).toMatchObject({ model: 'models/classifier.onnx', stage: 'load model and data', limit_s: 0.001 });
    expect(ledger.more_timed_out).toEqual([expect.objectContaining({ model: 'models/other.onnx', stage: 'load model and data', limit_s: 0.001 })]);
    expect(first.result.failed).toBe(true);
    expect(first.io.failed).toMatch(/^prune-guard: fail \(fail-on: fail\)/);
    expect(first.io.outputs.verdict).toBe('fail');
  });

  it('says so in the comment and the job summary', () => {
    const posted = api.calls.find((c) => route(c) === 'POST /repos/octo/models/issues/7/comments')!;
    for (const text of [posted.body.body as string, first.io.summary]) {
      expect(text).toContain('**Timed out:** `models/classifier.onnx` ran past its 0.001 s time budget during _load model and data_');
      expect(text).toContain('**Timed out:** `models/other.onnx` ran past its 0.001 s time budget');
      expect(text).not.toContain('_No model to check._');
    }
  });

  it('publishes no model for a run that ran out, and writes only its one merged ledger', () => {
    const out = path.join(repo.dir, 'prune-guard-out');
    // the models' folders were locked and staged into, and are left with nothing published
    expect(files(out).filter((f) => !f.startsWith('.prune-guard/') && fs.statSync(path.join(out, f)).isFile())).toEqual(['ledger.json', 'ledger.md']);
    // the merged ledger is published like a run's: one set, swapped in whole
    expect(fs.lstatSync(path.join(out, 'ledger.json')).isSymbolicLink()).toBe(true);
  });
});

describe('the action measures through the guarded path, its ledger enveloped like the CLI\'s', () => {
  let api: Awaited<ReturnType<typeof startFakeGitHub>>;
  let repo: ReturnType<typeof prRepo>;
  let measured: Awaited<ReturnType<typeof action>>;
  let again: Awaited<ReturnType<typeof action>>;

  beforeAll(async () => {
    repo = prRepo({ '.prune-guard.yml': `${FAST_CONFIG}recovery: reconstruct\n` });
    api = await startFakeGitHub();
    const push = { apiUrl: api.url, workspace: repo.dir, event: 'push', payload: { ref: 'refs/heads/main' }, sha: repo.head, inputs: { models: 'models/other.onnx', data: DATA, 'calib-data': fixture('fmnist-calib.npz'), 'github-token': 'test-token' } };
    measured = await action(push);
    // a second run into the same output folder replaces the first one's published steps
    again = await action(push);
  }, 180_000);
  afterAll(async () => api?.close());

  it('publishes the pruned model and its recovery steps under the model\'s folder, and no per-model ledger', () => {
    expect(measured.result.failed).toBe(false);
    expect(again.result.failed).toBe(false);
    const ledger = readLedger(again.result.ledgerPath);
    expect(validateLedger(ledger)).toEqual([]);
    expect(ledger.models.map((m) => m.steps.map((s) => s.name))).toEqual([['dense', 'prune', 'recover:reconstruct']]);
    expect(ledger.models[0].pruned).toBe('prune-guard-out/models/models_other.onnx/other.pruned.onnx');
    const out = path.join(repo.dir, 'prune-guard-out');
    expect(visibleNames(out)).toEqual(['ledger.json', 'ledger.md', 'models']);
    expect(visibleNames(path.join(out, 'models'))).toEqual(['models_other.onnx']);
    expect(Object.keys(outputSet(path.join(out, 'models/models_other.onnx')))).toEqual(['other.pruned.onnx', 'steps/01-prune.onnx', 'steps/02-reconstruct.onnx']);
    expect(api.calls.map(route)).toEqual(['POST /repos/octo/models/check-runs', 'POST /repos/octo/models/check-runs']);
  });

  it('run, compare and the action write the same envelope', async () => {
    const action = readLedger(measured.result.ledgerPath);
    const config = { ...DEFAULT_CONFIG, batchSizes: [1], latency: { ...DEFAULT_CONFIG.latency, warmup: 0, runs: 2, threads: 1 } };
    const budgets = resolveBudgets({}, []);
    const cli = await runGuarded({ model: fixture('mlp.onnx'), data: DATA, shifts: [], out: tempDir(), config: { ...config, recovery: 'none' }, budgets }, silentProgress);
    const compare = await comparePipeline({ base: fixture('mlp.onnx'), head: fixture('mlp.onnx'), data: DATA, shifts: [], out: tempDir(), config, budgets }, silentProgress);
    const shape = envelopeShape(action);
    expect(shape).toEqual({ keys: ['schema', 'verdict', 'tool', 'created_at', 'runtime'], runtime: ['onnxruntime', 'provider', 'threads', 'platform'], schema: 'prune-guard/ledger@1', tool: 'prune-guard' });
    expect(envelopeShape(cli.ledger)).toEqual(shape);
    expect(envelopeShape(compare.ledger)).toEqual(shape);
    expect(cli.ledger.tool).toEqual(action.tool);
    expect(compare.ledger.runtime).toEqual(cli.ledger.runtime);
    // the timed-out ledger is the same envelope with the run that stopped
    const stopped = await runGuarded({ model: fixture('mlp.onnx'), data: DATA, shifts: [], out: tempDir(), config: { ...config, timeBudget: 0.001 }, budgets }, silentProgress);
    expect(envelopeShape(stopped.ledger)).toEqual({ ...shape, keys: [...shape.keys, 'timed_out'] });
  }, 60_000);
});
