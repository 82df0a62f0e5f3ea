import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';

function git(cwd: string, args: string[]): Buffer {
  return execFileSync('git', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 4 * 1024 ** 3 });
}

function hasCommit(cwd: string, sha: string): boolean {
  try {
    git(cwd, ['cat-file', '-e', `${sha}^{commit}`]);
    return true;
  } catch {
    return false;
  }
}

const SHALLOW_HINT = 'the checkout is too shallow: set `fetch-depth: 0` on actions/checkout so the base commit is available';

/** The merge base of the pull request's base and head commits, from the local clone. */
export function mergeBase(cwd: string, baseSha: string, headSha: string): string {
  for (const sha of [baseSha, headSha]) {
    if (!hasCommit(cwd, sha)) throw new UserError(`git: commit ${sha.slice(0, 12)} is not in the checkout; ${SHALLOW_HINT}`);
  }
  try {
    return git(cwd, ['merge-base', baseSha, headSha]).toString().trim();
  } catch {
    throw new UserError(`git: no merge base of ${baseSha.slice(0, 12)} and ${headSha.slice(0, 12)}; ${SHALLOW_HINT}`);
  }
}

/** Writes `file` as it was at `sha` to `dest`; false when the file did not exist there (a new model). */
export function showFileAt(cwd: string, sha: string, file: string, dest: string): boolean {
  let content: Buffer;
  try {
    git(cwd, ['cat-file', '-e', `${sha}:${file}`]);
  } catch {
    return false;
  }
  content = git(cwd, ['show', `${sha}:${file}`]);
  if (content.subarray(0, 40).toString().startsWith('version https://git-lfs')) {
    throw new UserError(`${file}: is a Git LFS pointer at ${sha.slice(0, 12)}; check out with lfs: true and run git lfs fetch for the base commit`);
  }
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.writeFileSync(dest, content);
  return true;
}
