import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LOCK_NAME, PRIVATE_DIR } from '../../src/io/lock.js';

/**
 * What a reader sees in an --out folder: each visible file (links followed, folders walked) mapped to
 * `read(file)`; prune-guard's private folder and lock left out, a link to a name the current set lacks
 * counted as absent.
 */
export function outputSet(dir: string, read: (file: string) => string = (f) => fs.readFileSync(f, 'utf8')): Record<string, string> {
  const seen: Record<string, string> = {};
  const walk = (d: string, prefix: string) => {
    let names: string[];
    try {
      names = fs.readdirSync(d).sort();
    } catch (e) {
      // a linked folder can be gone by the time it is listed: the reader straddled a swap and the old set
      // was removed; like a link to a name the current set lacks, it counts as absent
      if (prefix !== '' && (e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const n of names) {
      if (prefix === '' && (n === PRIVATE_DIR || n === LOCK_NAME)) continue;
      const st = fs.statSync(path.join(d, n), { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(path.join(d, n), `${prefix}${n}/`);
      else seen[`${prefix}${n}`] = read(path.join(d, n));
    }
  };
  walk(dir, '');
  return seen;
}

/** The names at the top of an --out folder a user sees, sorted (prune-guard's private folder left out). */
export function visibleNames(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n !== PRIVATE_DIR)
    .sort();
}

/** sha256 of every regular file the arguments name (`--shift name=path` included), to prove inputs unchanged. */
export function inputHashes(args: readonly string[]): Record<string, string> {
  const files = args
    .map((a) => a.replace(/^[^=/]+=/, ''))
    // files under /proc and /sys change by themselves; they are refused unread anyway
    .filter((a) => fs.statSync(a, { throwIfNoEntry: false })?.isFile() && !/^\/(proc|sys)\//.test(fs.realpathSync(a)));
  return Object.fromEntries(files.map((f) => [f, createHash('sha256').update(fs.readFileSync(f)).digest('hex')]));
}
