/** Shared test helpers for the data layer: temp dirs and Debian's numpy as an independent oracle. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { UserError } from '../../src/errors.js';

const PYTHON = '/usr/bin/python3';

/**
 * Runs a Python snippet with numpy imported as np and `d` bound to `dir`; returns stdout. Files written
 * by numpy itself are the ground truth the parser has to agree with: CI installs Debian's python3-numpy,
 * and a machine without it fails these tests rather than skipping them.
 */
export function runPython(dir: string, code: string): string {
  const script = `import sys, json\nimport numpy as np\nd = sys.argv[1]\n${code}\n`;
  const r = spawnSync(PYTHON, ['-c', script, dir], { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run ${PYTHON} (${r.error.message}); install Debian's python3 and python3-numpy`);
  if (/No module named .?numpy/.test(r.stderr)) throw new Error(`numpy is missing: ${PYTHON} cannot import it; install Debian's python3-numpy (CI's .ci/run does)`);
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** A fresh directory under os.tmpdir(), removed after the file's tests. */
export function tempDir(prefix = 'prune-guard-data-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const enc = new TextEncoder();

/** A .npy file with a hand-written header, for cases numpy itself would refuse to produce. */
export function npyBytes(header: string, data: Uint8Array = new Uint8Array(0), version: 1 | 2 | 3 = 1): Uint8Array {
  const h = enc.encode(header);
  const prefix = version === 1 ? 10 : 12;
  const out = new Uint8Array(prefix + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, h.length, true);
  else view.setUint32(8, h.length, true);
  out.set(h, prefix);
  out.set(data, prefix + h.length);
  return out;
}

/** The one-line message of the UserError `fn` throws; fails the test on any other outcome. */
export function userErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    const msg = (e as UserError).message;
    expect(msg).not.toContain('\n');
    return msg;
  }
  throw new Error('expected a UserError, nothing was thrown');
}
