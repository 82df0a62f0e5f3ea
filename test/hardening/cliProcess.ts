import { spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../support/fixtures.js';

export interface Running {
  child: ChildProcess;
  stderr: () => string;
  /** resolves once stderr matches */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** The built CLI as a child process we can signal. */
export function startCli(args: readonly string[]): Running {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/prune-guard.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => {
    stderr += d;
    for (const w of [...waiters]) if (w.pattern.test(stderr)) w.resolve();
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return {
    child,
    stderr: () => stderr,
    done,
    waitFor(pattern, timeoutMs = 120_000) {
      if (pattern.test(stderr)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`stderr never matched ${pattern}:\n${stderr}`)), timeoutMs);
        const w = {
          pattern,
          resolve: () => {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(w), 1);
            resolve();
          },
        };
        waiters.push(w);
        void done.then(() => w.pattern.test(stderr) || reject(new Error(`exited before stderr matched ${pattern}:\n${stderr}`)));
      });
    },
  };
}

export function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Relative path -> sha256 (file), 'dir' or '-> target' (symlink) of everything under a folder, hidden entries included. */
export function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(
    (fs.readdirSync(dir, { recursive: true }) as string[]).sort().map((rel) => {
      const p = path.join(dir, rel);
      const st = fs.lstatSync(p);
      return [rel, st.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : st.isDirectory() ? 'dir' : sha256(p)];
    }),
  );
}
