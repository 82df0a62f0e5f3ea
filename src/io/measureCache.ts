import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from './atomicWrite.js';

/**
 * Measurements worth keeping between runs on one machine (how latency responds to channel counts),
 * stored outside any output folder: `PRUNE_GUARD_CACHE_DIR`, else the OS cache folder
 * (`$XDG_CACHE_HOME` or `~/.cache`), else `$RUNNER_TEMP` or the temp folder. One JSON file per key,
 * named by the key's hash and holding the key itself, so a file that cannot be read, is corrupt or
 * answers another key is ignored and measured again.
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PRUNE_GUARD_CACHE_DIR) return env.PRUNE_GUARD_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || (os.homedir() ? path.join(os.homedir(), '.cache') : '') || env.RUNNER_TEMP || os.tmpdir();
  return path.join(base, 'prune-guard');
}

const FORMAT = 'prune-guard/measure-cache@1';

function fileFor(dir: string, key: string): string {
  return path.join(dir, `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`);
}

/** The value stored under `key`, or undefined when there is none or it cannot be trusted. */
export function readCached<T>(dir: string, key: string, valid: (v: unknown) => v is T): T | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(fileFor(dir, key), 'utf8')) as { format?: unknown; key?: unknown; value?: unknown };
    if (parsed.format !== FORMAT || parsed.key !== key || !valid(parsed.value)) return undefined;
    return parsed.value;
  } catch {
    return undefined;
  }
}

/** Stores `value` under `key`; a cache that cannot be written only costs the next run a measurement. */
export function writeCached(dir: string, key: string, value: unknown): boolean {
  try {
    writeFileAtomic(fileFor(dir, key), JSON.stringify({ format: FORMAT, key, value }) + '\n');
    return true;
  } catch {
    return false;
  }
}
