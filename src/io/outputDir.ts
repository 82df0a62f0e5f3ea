import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { onInterrupt } from './cleanup.js';
import { lockDir, LOCK_NAME, type DirLock } from './lock.js';

export const STAGING_PREFIX = '.prune-guard-staging-';

/**
 * An --out folder written as one transaction: the run writes every file into a private staging folder
 * inside it, and `commit` renames them all into place in one synchronous burst. Until then the folder
 * keeps the previous run's complete files; a failed, timed-out or killed run leaves no trace. The
 * folder is locked for the whole run, so a concurrent run into it waits instead of mixing files.
 */
export class OutputDir {
  private done = false;
  private readonly retired = new Set<string>();
  private readonly unregister: () => void;

  private constructor(
    readonly dir: string,
    readonly staging: string,
    private readonly lock: DirLock,
    /** the folder did not exist before this run: remove it again when nothing is published */
    private readonly created: boolean,
  ) {
    this.unregister = onInterrupt(() => this.abort());
  }

  static async open(dir: string, opts: { waitMs: number; onWait?: (message: string) => void }): Promise<OutputDir> {
    const created = !fs.existsSync(dir);
    const lock = await lockDir(dir, {
      waitMs: opts.waitMs,
      onWait: (o) => opts.onWait?.(`waiting for another prune-guard run (pid ${o.pid}) writing to ${dir}`),
    });
    try {
      removeOrphanStaging(dir);
      const staging = path.join(dir, `${STAGING_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
      fs.mkdirSync(staging);
      return new OutputDir(dir, staging, lock, created);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** The final path of a file written under the staging folder. */
  publicPath(p: string): string {
    const rel = path.relative(this.staging, p);
    return rel.startsWith('..') || path.isAbsolute(rel) ? p : path.join(this.dir, rel);
  }

  /** Drop what was staged so far but keep the run open (a timed-out run then stages only its ledger). */
  discardStaged(): void {
    for (const n of fs.readdirSync(this.staging)) fs.rmSync(path.join(this.staging, n), { recursive: true, force: true });
  }

  /** Delete `name` from the folder at commit (an earlier run's output the new ledger no longer describes). */
  retire(name: string): void {
    this.retired.add(name);
  }

  /** Move every staged file into the folder (`last` after the others), then unlock. */
  commit(last: readonly string[] = []): void {
    if (this.done) throw new Error('OutputDir: already committed or aborted');
    const names = fs.readdirSync(this.staging).filter((n) => !n.startsWith('.'));
    const ordered = [...names.filter((n) => !last.includes(n)), ...last.filter((n) => names.includes(n))];
    for (const n of this.retired) if (!names.includes(n)) fs.rmSync(path.join(this.dir, n), { force: true });
    for (const n of ordered) {
      const target = path.join(this.dir, n);
      const staged = path.join(this.staging, n);
      // rename cannot replace a non-empty folder (an earlier run's steps/): that one moves into the
      // staging folder under a hidden name first, and goes with it in finish()
      const old = fs.lstatSync(target, { throwIfNoEntry: false });
      if (old && (old.isDirectory() || fs.lstatSync(staged).isDirectory())) fs.renameSync(target, path.join(this.staging, `.replaced-${n}`));
      fs.renameSync(staged, target);
    }
    this.finish();
  }

  /** Drop everything staged and unlock; the folder is as the previous run left it. Safe to call twice. */
  abort(): void {
    if (this.done) return;
    this.finish();
    if (this.created) {
      try {
        fs.rmdirSync(this.dir); // only when empty: never delete what someone else put there
      } catch {
        // not empty
      }
    }
  }

  private finish(): void {
    this.done = true;
    this.unregister();
    fs.rmSync(this.staging, { recursive: true, force: true });
    this.lock.release();
  }
}

// writeFileAtomic's temp names: .<file>.<pid>.<8 hex>.tmp
const ATOMIC_TEMP = /^\..+\.\d+\.[0-9a-f]{8}\.tmp$/;

/**
 * Staging folders and temp files of runs killed with SIGKILL (no cleanup ran). We hold the lock, so
 * no live run owns any of them.
 */
function removeOrphanStaging(dir: string): void {
  for (const n of fs.readdirSync(dir)) {
    if (n.startsWith(STAGING_PREFIX) || ATOMIC_TEMP.test(n)) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
  }
}

export { LOCK_NAME };
