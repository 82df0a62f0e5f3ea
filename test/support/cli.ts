import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { main } from '../../src/cli.js';
import { ROOT } from './fixtures.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The CLI's `main()` from src/, in this process: the same exit code, stdout and stderr (stage log and
 * a recovery command's output included) as the bundled bin gives, without a process per call.
 * `cwd` matters only for the default ./.prune-guard.yml and relative paths; the test process's
 * directory is restored afterwards.
 */
export async function runCli(args: readonly string[], opts: { cwd?: string } = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const before = process.cwd();
  const cwd = opts.cwd ?? ROOT;
  if (cwd !== before) process.chdir(cwd);
  try {
    const code = await main(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
    return { code, stdout, stderr };
  } finally {
    if (cwd !== before) process.chdir(before);
  }
}

/** The committed bundle exactly as `npx prune-guard` runs it, in a child process: for end-to-end tests only. */
export function runDist(args: readonly string[], opts: { cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/prune-guard.js'), ...args], { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
