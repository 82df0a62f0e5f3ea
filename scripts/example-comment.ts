/**
 * The example pull-request comment shown in README.md, produced by the action's own code on a real pull
 * request: a throwaway git repository whose head commit replaces the MLP classifier with the CNN fixture,
 * both pruned to 50% without recovery and measured on the Fashion-MNIST test set. The head breaks its
 * pruning budgets and regresses against base, the case a reviewer most needs to read at a glance. The
 * browser test renders the same pull request.
 *
 *   npx tsx scripts/example-comment.ts            print the whole comment
 *   npx tsx scripts/example-comment.ts --readme   also write it, folds emptied, into README.md
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { checkModels, mergeLedgers } from '../src/github/checkModels.js';
import { fitComment } from '../src/github/fit.js';
import { mergeBase } from '../src/github/gitBase.js';
import { readInputs } from '../src/github/inputs.js';
import { renderReport } from '../src/github/report.js';
import { resolveSettings } from '../src/github/settings.js';
import { silentProgress } from '../src/io/progress.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The repository's settings: half the weights, no recovery, a per-class budget tighter than the default. */
export const EXAMPLE_CONFIG = `sparsity: 0.5
recovery: none
batch-sizes: [1]
latency: { warmup: 2, runs: 10, threads: 1 }
budgets:
  accuracy-drop: 1pt
  class-accuracy-drop: 8pt
`;

/** The action's inputs for the example: every model under models/, evaluated on data/test.npz. */
export const EXAMPLE_INPUTS: Record<string, string> = { models: 'models/**/*.onnx', data: 'data/test.npz' };

export const EXAMPLE_MODEL = 'models/classifier.onnx';

/** A repository with one pull request: base holds the MLP as models/classifier.onnx, head the CNN. */
export function examplePullRequest(): { dir: string; base: string; head: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-example-'));
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();
  git('init', '-q', '-b', 'main');
  git('config', 'user.email', 'ci@example.com');
  git('config', 'user.name', 'ci');
  fs.mkdirSync(path.join(dir, 'models'));
  fs.mkdirSync(path.join(dir, 'data'));
  fs.copyFileSync(path.join(ROOT, 'fixtures/mlp.onnx'), path.join(dir, EXAMPLE_MODEL));
  fs.copyFileSync(path.join(ROOT, 'fixtures/fmnist-test.npz'), path.join(dir, 'data/test.npz'));
  fs.writeFileSync(path.join(dir, '.prune-guard.yml'), EXAMPLE_CONFIG);
  git('add', '.');
  git('commit', '-q', '-m', 'base');
  const base = git('rev-parse', 'HEAD');
  fs.copyFileSync(path.join(ROOT, 'fixtures/cnn-bn.onnx'), path.join(dir, EXAMPLE_MODEL));
  git('commit', '-q', '-am', 'head: the CNN classifier');
  return { dir, base, head: git('rev-parse', 'HEAD') };
}

/** The comment the action posts on that pull request (check mode, the same calls as `run()` without the API). */
export async function exampleComment(): Promise<string> {
  const pr = examplePullRequest();
  const inputs = readInputs((name) => EXAMPLE_INPUTS[name] ?? '');
  const settings = resolveSettings(inputs, pr.dir);
  const ledgers = await checkModels([{ path: EXAMPLE_MODEL }], settings, {
    workspace: pr.dir,
    out: path.join(pr.dir, inputs.out),
    temp: fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-example-run-')),
    base: { ref: mergeBase(pr.dir, pr.base, pr.head), cwd: pr.dir },
    progress: silentProgress,
  });
  const run = 'https://github.com/OWNER/REPO/actions/runs/RUN_ID';
  const text = fitComment(renderReport(mergeLedgers(ledgers), { title: '1 changed model in #7', links: { run, artifacts: `${run}#artifacts` } }));
  fs.rmSync(pr.dir, { recursive: true, force: true });
  return text;
}

/**
 * What a reviewer sees before expanding anything: each fold's body replaced by "…", and without the
 * hidden marker that finds the sticky comment (GitHub does not show it).
 */
export function foldsEmptied(comment: string): string {
  return comment.replace(/^<!-- prune-guard -->\n\n/, '').replace(/(<details><summary>.*?<\/summary>)\n[\s\S]*?\n<\/details>/g, '$1\n\n…\n\n</details>');
}

const START = '<!-- example-comment:start -->';
const END = '<!-- example-comment:end -->';

function writeReadme(comment: string): void {
  const file = path.join(ROOT, 'README.md');
  const readme = fs.readFileSync(file, 'utf8');
  const from = readme.indexOf(START);
  const to = readme.indexOf(END);
  if (from < 0 || to < from) throw new Error(`README.md has no ${START} … ${END} block to replace`);
  const block = `${START}\n\`\`\`\`markdown\n${foldsEmptied(comment).trimEnd()}\n\`\`\`\`\n`;
  fs.writeFileSync(file, readme.slice(0, from) + block + readme.slice(to));
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const comment = await exampleComment();
  process.stdout.write(comment);
  if (process.argv.includes('--readme')) writeReadme(comment);
}
