/**
 * The action gating models that are not one classifier output: a pull request changing the two-output
 * detector and the embedding model, data without labels, fidelity budgets from the repository's config
 * (one that holds and one that does not for each model), through `run()` against the fake GitHub API.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/types.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { referenceFidelity } from '../support/referenceEval.js';
import { firstSamples } from '../support/slice.js';
import { route, startFakeGitHub } from './fakeGitHub.js';
import { prPayload, runActionInProcess, type InProcessRun } from './harness.js';

const UNLABELLED = firstSamples(fixture('exports/fmnist-unlabelled.npz'), 48);
const CONFIG = 'sparsity: 0.5\nrecovery: none\nbatch-sizes: [1]\nlatency: { warmup: 1, runs: 3, threads: 1 }\nbudgets:\n  min-output-cosine: 0.9\n  max-output-rel-error: 0.1%\n';
const MODELS = ['models/detector.onnx', 'models/embed.onnx'];

const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();

/** A repository whose pull request touches both models (the base holds them too). */
function repoWithModels(): { dir: string; base: string; head: string } {
  const dir = tempDir('prune-guard-repo-');
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'user.email', 'ci@example.com');
  git(dir, 'config', 'user.name', 'ci');
  fs.mkdirSync(path.join(dir, 'models'));
  for (const m of MODELS) fs.copyFileSync(fixture(`exports/${path.basename(m)}`), path.join(dir, m));
  fs.writeFileSync(path.join(dir, '.prune-guard.yml'), CONFIG);
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'base');
  const base = git(dir, 'rev-parse', 'HEAD');
  fs.appendFileSync(path.join(dir, '.prune-guard.yml'), '# fidelity budgets\n');
  git(dir, 'commit', '-q', '-am', 'head');
  return { dir, base, head: git(dir, 'rev-parse', 'HEAD') };
}

describe('the action gates a detector and an embedding model by fidelity', () => {
  let api: Awaited<ReturnType<typeof startFakeGitHub>>;
  let repo: ReturnType<typeof repoWithModels>;
  let r: InProcessRun;
  let ledger: Ledger;

  beforeAll(async () => {
    repo = repoWithModels();
    api = await startFakeGitHub({ files: MODELS.map((filename) => ({ filename, status: 'modified' })) });
    r = await runActionInProcess({
      workspace: repo.dir,
      apiUrl: api.url,
      eventName: 'pull_request',
      payload: prPayload(repo.base, repo.head),
      inputs: { models: 'models/*.onnx', data: UNLABELLED, 'github-token': 'test-token' },
      sha: 'merge0100',
    });
    ledger = JSON.parse(fs.readFileSync(r.outputs.ledger, 'utf8')) as Ledger;
  }, 180_000);
  afterAll(async () => api?.close());

  it('judges each model by its outputs: the cosine floor holds, the error limit does not, so the step fails', () => {
    expect(ledger.models.map((m) => [m.model, m.task, m.verdict])).toEqual([
      ['models/detector.onnx', 'fidelity', 'fail'],
      ['models/embed.onnx', 'fidelity', 'fail'],
    ]);
    for (const m of ledger.models) {
      expect(m.budgets.filter((b) => b.name.includes('output')).map((b) => [b.name, b.verdict, b.source])).toEqual([
        ['min-output-cosine', 'pass', 'config'],
        ['max-output-rel-error', 'fail', 'config'],
      ]);
      // each version is judged against its own dense model, and the ledger says so
      expect(m.vs_base).toBeUndefined();
      expect(m.notes).toContain(`base comparison: not made for task fidelity; ${m.model} is judged against its own dense model`);
    }
    expect(r.failed).toEqual(['prune-guard: fail (fail-on: fail) for models/detector.onnx, models/embed.onnx; see the ledger in the job summary']);
  });

  it('the comment and the failed check runs show the fidelity budgets like any other', () => {
    expect(api.state.comments).toHaveLength(1);
    const body = api.state.comments[0].body;
    expect(body).toMatch(/\| `max.output.rel.error`<br><sub>dense → pruned<\/sub> \| ≤\s0\.1% \| \d+\.\d\d% \| [^|]+ \| ❌ fail \| boxes \(worst of 2 outputs\)/);
    expect(body).toMatch(/\| `min.output.cosine`<br><sub>dense → pruned<\/sub> \| ≥\s0\.9 \| 0\.9\d{3} \| [^|]+ \| ✅ pass \| cosine 0\.9\d{3}, relative L2 error/);
    const checks = api.calls.filter((c) => route(c) === 'POST /repos/octo/models/check-runs').map((c) => [c.body.name, c.body.conclusion]);
    expect(checks).toEqual([
      ['prune-guard / models/detector.onnx', 'failure'],
      ['prune-guard / models/embed.onnx', 'failure'],
    ]);
  });

  it('the judged numbers are reproduced from the two models\' onnxruntime outputs', async () => {
    for (const m of ledger.models) {
      const want = await referenceFidelity(path.join(repo.dir, m.model), path.join(repo.dir, m.pruned), UNLABELLED);
      const final = m.steps.at(-1)!.fidelity!;
      const worst = final.reduce((a, b) => (b.rel_l2 > a.rel_l2 ? b : a));
      expect(m.budgets.find((b) => b.name === 'max-output-rel-error')!.actual).toBe(worst.rel_l2);
      for (const f of final) {
        expect(f.cosine).toBeCloseTo(want.get(f.output)!.cosine, 6);
        expect(f.rel_l2 / want.get(f.output)!.relL2).toBeCloseTo(1, 5);
      }
    }
  });
});
