import * as fs from 'node:fs';
import { underPseudoRoot } from './inputFile.js';
import { resolved } from './inputPaths.js';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../errors.js';

export const LOCK_NAME = '.prune-guard.lock';

interface LockOwner {
  pid: number;
  host: string;
  started: string;
}

/** Whether the process that wrote a lock is gone, so the lock can be taken over. */
function isStale(owner: LockOwner | undefined): boolean {
  // an unreadable lock is one a killed run was half-way through writing
  if (!owner || !Number.isInteger(owner.pid)) return true;
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

function readOwner(file: string): LockOwner | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

export interface DirLock {
  file: string;
  release(): void;
}

/**
 * Take `dir/.prune-guard.lock` (created with O_EXCL, holding our pid). A lock held by a live run is
 * waited for up to `waitMs`, then refused; a lock left by a dead process (kill -9, power loss) is
 * broken. Two runs into one --out folder thus take turns instead of mixing their files.
 */
export async function lockDir(dir: string, opts: { waitMs: number; onWait?: (owner: LockOwner) => void; pollMs?: number }): Promise<DirLock> {
  // mkdir under /proc never settles (Node retries it without end, deaf to signals): refuse it by name
  if (underPseudoRoot(resolved(dir))) throw new UserError(`--out ${dir}: is on a system file system (/proc, /sys or /dev); pass a folder path for the outputs`);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' ? 'is a file, not a folder' : code === 'ENOTDIR' ? 'part of the path is a file, not a folder' : `cannot be created (${(e as Error).message})`;
    throw new UserError(`--out ${dir}: ${why}; pass a folder path for the outputs`);
  }
  const file = path.join(dir, LOCK_NAME);
  const me: LockOwner = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  const until = Date.now() + opts.waitMs;
  let announced = false;
  for (;;) {
    try {
      const fd = fs.openSync(file, 'wx');
      try {
        fs.writeFileSync(fd, JSON.stringify(me) + '\n');
      } finally {
        fs.closeSync(fd);
      }
      let released = false;
      return {
        file,
        release() {
          if (released) return;
          released = true;
          // only remove the lock if it is still ours (a stale-lock breaker may have replaced it)
          if (readOwner(file)?.pid === me.pid) fs.rmSync(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new UserError(`--out ${dir}: cannot create the lock file ${LOCK_NAME} (${(e as Error).message}); check that the folder is writable`);
      }
    }
    const owner = readOwner(file);
    if (isStale(owner)) {
      // re-read right before removing, so a lock another waiter just took over is left alone
      const again = readOwner(file);
      if (JSON.stringify(again) === JSON.stringify(owner)) fs.rmSync(file, { force: true });
      continue;
    }
    if (Date.now() >= until) {
      throw new UserError(
        `--out ${dir}: another prune-guard run (pid ${owner!.pid} on ${owner!.host}, started ${owner!.started}) is writing there; wait for it, use another --out, or delete ${path.join(dir, LOCK_NAME)} if that run is gone`,
      );
    }
    if (!announced) {
      announced = true;
      opts.onWait?.(owner!);
    }
    await sleep(opts.pollMs ?? 200);
  }
}
