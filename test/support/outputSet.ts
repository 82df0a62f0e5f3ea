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
    for (const n of fs.readdirSync(d).sort()) {
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
