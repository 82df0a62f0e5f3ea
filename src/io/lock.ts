import * as fs from 'node:fs';
import { underPseudoRoot } from './inputFile.js';
import { resolved } from './inputPaths.js';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../errors.js';

export const LOCK_NAME = '.prune-guard.lock';
/** prune-guard's private folder inside --out: published sets, the run list, lock files being written */
export const PRIVATE_DIR = '.prune-guard';
const LOCK_FORMAT = 'prune-guard-lock/1';
const TOKEN = /^[0-9a-f]{16}$/;

export interface LockOwner {
  format: typeof LOCK_FORMAT;
  /** random, names everything this run creates in the private folder */
  token: string;
  pid: number;
  host: string;
  started: string;
}

export function newToken(): string {
  return randomBytes(8).toString('hex');
}

export function isToken(s: unknown): s is string {
  return typeof s === 'string' && TOKEN.test(s);
}

/** Whether the process that wrote a lock is gone, so the lock can be taken over. */
function isStale(owner: LockOwner): boolean {
  // a pid is only meaningful on the machine that wrote it; a lock from another host is never broken
  if (owner.host !== os.hostname()) return false;
  if (owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

type LockState = { kind: 'absent' } | { kind: 'ours'; owner: LockOwner; text: string } | { kind: 'foreign'; why: string };

/**
 * A lock is ours only in our exact format: it is created whole (written aside, then hard-linked into
 * place), so a file that does not parse was never written by prune-guard and is never deleted.
 */
function readLock(file: string): LockState {
  let text: string;
  try {
    const st = fs.lstatSync(file);
    if (!st.isFile()) return { kind: 'foreign', why: st.isDirectory() ? 'is a folder' : 'is not a regular file' };
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    return { kind: 'foreign', why: `cannot be read (${(e as Error).message})` };
  }
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (o.format === LOCK_FORMAT && isToken(o.token) && Number.isInteger(o.pid) && typeof o.host === 'string' && typeof o.started === 'string') {
      return { kind: 'ours', owner: o as LockOwner, text };
    }
  } catch {
    // falls through: not ours
  }
  return { kind: 'foreign', why: 'is not a lock prune-guard wrote' };
}

export interface DirLock {
  file: string;
  token: string;
  release(): void;
}

function makeDirs(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' ? 'is a file, not a folder' : code === 'ENOTDIR' ? 'part of the path is a file, not a folder' : `cannot be created (${(e as Error).message})`;
    throw new UserError(`--out ${dir}: ${why}; pass a folder path for the outputs`);
  }
  const priv = path.join(dir, PRIVATE_DIR);
  const st = fs.lstatSync(priv, { throwIfNoEntry: false });
  if (st && !st.isDirectory()) {
    throw new UserError(`--out ${dir}: ${PRIVATE_DIR} is in the way (prune-guard keeps its output sets in a folder of that name); move it away or choose another --out`);
  }
  if (!st) fs.mkdirSync(priv, { recursive: true });
}

/** Create the lock whole or not at all: written under a token name, then linked (fails if one exists). */
function tryCreate(file: string, priv: string, me: LockOwner): boolean {
  const aside = path.join(priv, `lock-${me.token}`);
  fs.writeFileSync(aside, JSON.stringify(me) + '\n', { flag: 'wx' });
  try {
    fs.linkSync(aside, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(aside, { force: true });
  }
}

/**
 * Take `dir/.prune-guard.lock` (holding a random token, our pid and host). A lock held by a live run is
 * waited for up to `waitMs`, then refused; a lock left by a dead process (kill -9, power loss) is
 * broken and `onStale` gets its owner so its files can be removed. A file of that name in any other
 * format is refused, never deleted. Two runs into one --out folder thus take turns.
 */
export async function lockDir(
  dir: string,
  opts: { waitMs: number; onWait?: (owner: LockOwner) => void; onStale?: (owner: LockOwner) => void; pollMs?: number },
): Promise<DirLock> {
  // mkdir under /proc never settles (Node retries it without end, deaf to signals): refuse it by name
  if (underPseudoRoot(resolved(dir))) throw new UserError(`--out ${dir}: is on a system file system (/proc, /sys or /dev); pass a folder path for the outputs`);
  const file = path.join(dir, LOCK_NAME);
  const priv = path.join(dir, PRIVATE_DIR);
  const me: LockOwner = { format: LOCK_FORMAT, token: newToken(), pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  const until = Date.now() + opts.waitMs;
  let announced = false;
  for (;;) {
    // the folder is (re)made on every try: a run we waited for may have removed the folder it created
    makeDirs(dir);
    let created: boolean;
    try {
      created = tryCreate(file, priv, me);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new UserError(`--out ${dir}: cannot create the lock file ${LOCK_NAME} (${(e as Error).message}); check that the folder is writable`);
    }
    if (created) {
      let released = false;
      return {
        file,
        token: me.token,
        release() {
          if (released) return;
          released = true;
          // only remove the lock if it is still ours (a stale-lock breaker may have replaced it)
          const now = readLock(file);
          if (now.kind === 'ours' && now.owner.token === me.token) fs.rmSync(file, { force: true });
        },
      };
    }
    const lock = readLock(file);
    if (lock.kind === 'absent') continue;
    if (lock.kind === 'foreign') {
      throw new UserError(`--out ${dir}: ${LOCK_NAME} ${lock.why}; prune-guard never deletes it: move it away or choose another --out`);
    }
    const owner = lock.owner;
    if (isStale(owner)) {
      // re-read right before removing, so a lock another waiter just took over is left alone
      const again = readLock(file);
      if (again.kind === 'ours' && again.text === lock.text) {
        fs.rmSync(file, { force: true });
        // killed between linking its lock and removing the copy it linked from
        fs.rmSync(path.join(priv, `lock-${owner.token}`), { force: true });
        opts.onStale?.(owner);
      }
      continue;
    }
    if (Date.now() >= until) {
      throw new UserError(
        `--out ${dir}: another prune-guard run (pid ${owner.pid} on ${owner.host}, started ${owner.started}) is writing there; wait for it, use another --out, or delete ${file} if that run is gone`,
      );
    }
    if (!announced) {
      announced = true;
      opts.onWait?.(owner);
    }
    await sleep(opts.pollMs ?? 200);
  }
}
