import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { LOCK_NAME, newToken, PRIVATE_DIR } from '../../src/io/lock.js';
import { OutputDir } from '../../src/io/outputDir.js';
import { isUserError } from '../../src/errors.js';
import { ROOT, tempDir } from '../support/fixtures.js';
import { outputSet } from '../support/outputSet.js';

const WAIT = { waitMs: 1000 };

function stage(out: OutputDir, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(out.staging, name)), { recursive: true });
    fs.writeFileSync(path.join(out.staging, name), text);
  }
}

async function publish(dir: string, files: Record<string, string>): Promise<void> {
  const out = await OutputDir.open(dir, WAIT);
  stage(out, files);
  out.commit();
}

const visible = (dir: string): Record<string, string> => outputSet(dir);

/** The user-error message `fn` throws. */
async function refusal(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (e) {
    if (isUserError(e)) return (e as Error).message;
    throw e;
  }
  throw new Error('not refused');
}

const runFolders = (dir: string): string[] => fs.readdirSync(path.join(dir, PRIVATE_DIR, 'runs')).sort();

describe('OutputDir', () => {
  it('a folder published again replaces the earlier set whole, leaving no lock or old set behind', async () => {
    const dir = tempDir();
    await publish(dir, { 'steps/01-prune.onnx': 'a', 'steps/02-reconstruct.onnx': 'b', 'm.pruned.onnx': 'b', 'ledger.json': '1' });
    await publish(dir, { 'steps/01-prune.onnx': 'c', 'm.pruned.onnx': 'c', 'ledger.json': '2' });
    expect(visible(dir)).toEqual({ 'ledger.json': '2', 'm.pruned.onnx': 'c', 'steps/01-prune.onnx': 'c' });
    expect(fs.existsSync(path.join(dir, LOCK_NAME))).toBe(false);
    expect(runFolders(dir)).toHaveLength(1);
  });

  it('a file and a folder of the same name replace each other; a name the new set lacks disappears', async () => {
    const dir = tempDir();
    await publish(dir, { steps: 'a file', 'm.pruned.onnx': 'm' });
    await publish(dir, { 'steps/x.onnx': 'x' });
    expect(visible(dir)).toEqual({ 'steps/x.onnx': 'x' });
    expect(fs.readdirSync(dir).sort()).toEqual([PRIVATE_DIR, 'steps']);
    await publish(dir, { steps: 'a file again' });
    expect(visible(dir)).toEqual({ steps: 'a file again' });
  });

  it('a folder or file prune-guard did not write in the way of a name is refused in one line, before work and at publish', async () => {
    const dir = tempDir();
    await publish(dir, { 'ledger.json': 'old', 'm.pruned.onnx': 'old' });
    fs.rmSync(path.join(dir, 'ledger.md'), { force: true });
    fs.mkdirSync(path.join(dir, 'ledger.md'));
    fs.writeFileSync(path.join(dir, 'ledger.md', 'notes.txt'), 'mine');
    expect(await refusal(() => OutputDir.open(dir, { ...WAIT, names: ['ledger.md'] }))).toBe(
      `--out ${dir}: ledger.md is a folder prune-guard did not write, where this run publishes its ledger.md; move it away or choose another --out`,
    );
    // a name the run did not announce is still checked before the swap
    const out = await OutputDir.open(dir, WAIT);
    stage(out, { 'ledger.json': 'new', 'ledger.md': 'new', 'm.pruned.onnx': 'new' });
    expect(await refusal(() => out.commit())).toMatch(/ledger\.md is a folder prune-guard did not write/);
    out.abort();
    expect(visible(dir)).toEqual({ 'ledger.json': 'old', 'ledger.md/notes.txt': 'mine', 'm.pruned.onnx': 'old' });
    expect(runFolders(dir)).toHaveLength(1);
  });

  it('a failure between staging and publishing leaves the old set intact and removes the new one', async () => {
    const dir = tempDir();
    await publish(dir, { 'ledger.json': 'old', 'm.pruned.onnx': 'old' });
    const out = await OutputDir.open(dir, WAIT);
    stage(out, { 'ledger.json': 'new', 'm.pruned.onnx': 'new', 'steps/a.onnx': 'new' });
    expect(
      await refusal(() =>
        out.commit({
          beforeSwap: () => {
            throw new Error('disk full');
          },
        }),
      ),
    ).toBe(`--out ${dir}: cannot publish the outputs (disk full); the previous outputs are unchanged`);
    out.abort();
    expect(visible(dir)).toEqual({ 'ledger.json': 'old', 'm.pruned.onnx': 'old' });
    expect(fs.readdirSync(dir).sort()).toEqual([PRIVATE_DIR, 'ledger.json', 'm.pruned.onnx']);
    expect(runFolders(dir)).toHaveLength(1);
  });

  it('a run killed (SIGKILL) at any point of publishing leaves one complete set; the next run clears the rest', async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/io/publishLoop.ts'), dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let published = 0;
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        published += String(d).split('\n').length - 1;
        // a reader at any moment finds every file whole (two reads may straddle a swap, so files are
        // compared with each other only once the writer is dead)
        try {
          const seen = visible(dir);
          expect(JSON.parse(seen['ledger.json'])).toHaveProperty('set');
          const model = seen['model.onnx'];
          expect(model).toBe(model.slice(0, model.length / 20_000).repeat(20_000));
        } catch (e) {
          reject(e as Error);
        }
        if (published >= 30) resolve();
      });
      void exited.then(() => reject(new Error(`publish loop exited: ${stderr}`)));
    });
    child.kill('SIGKILL');
    await exited;
    expect(published).toBeGreaterThanOrEqual(30);
    const seen = visible(dir);
    const k = (JSON.parse(seen['ledger.json']) as { set: number }).set;
    expect(k).toBeGreaterThanOrEqual(29);
    expect(seen).toEqual({ 'ledger.json': JSON.stringify({ set: k }), 'model.onnx': String(k).repeat(20_000), ...(k % 2 === 0 ? { 'steps/a': String(k) } : {}) });
    // the next run takes the dead lock over and removes the dead run's folder
    const next = await OutputDir.open(dir, WAIT);
    expect(runFolders(dir)).toHaveLength(2); // the current set and the new staging folder
    next.abort();
    expect(runFolders(dir)).toHaveLength(1);
    expect(visible(dir)).toEqual(seen);
  });

  it('deletes only what it recorded: a user file named like a temp file and an unrecorded folder survive', async () => {
    const dir = tempDir();
    await publish(dir, { 'ledger.json': '1' });
    const user = path.join(dir, '.backup.2024.deadbeef.tmp');
    fs.writeFileSync(user, 'keep');
    const stray = path.join(dir, PRIVATE_DIR, 'runs', newToken());
    fs.mkdirSync(stray);
    await publish(dir, { 'ledger.json': '2' });
    expect(fs.readFileSync(user, 'utf8')).toBe('keep');
    expect(fs.existsSync(stray)).toBe(true);
    expect(visible(dir)['ledger.json']).toBe('2');
  });

  it('a lock file not in prune-guard\'s format is refused in one line and never deleted', async () => {
    const dir = tempDir();
    const lock = path.join(dir, LOCK_NAME);
    for (const text of ['my notes', JSON.stringify({ pid: 999999, host: os.hostname(), started: 'then' })]) {
      fs.writeFileSync(lock, text);
      expect(await refusal(() => OutputDir.open(dir, WAIT))).toBe(
        `--out ${dir}: ${LOCK_NAME} is not a lock prune-guard wrote; prune-guard never deletes it: move it away or choose another --out`,
      );
      expect(fs.readFileSync(lock, 'utf8')).toBe(text);
    }
    expect(fs.readdirSync(dir)).toEqual([LOCK_NAME]);
  });

  it('a run waiting for the lock carries on when the holder fails and removes the folder it created', async () => {
    const dir = path.join(tempDir(), 'new-out');
    const holder = await OutputDir.open(dir, WAIT);
    let waited = '';
    const waiter = OutputDir.open(dir, { waitMs: 10_000, onWait: (m) => (waited = m) });
    await new Promise((r) => setTimeout(r, 300));
    expect(waited).toMatch(/waiting for another prune-guard run/);
    holder.abort(); // nothing published: the folder it created goes with it
    const second = await waiter;
    stage(second, { 'ledger.json': 'second' });
    second.commit();
    expect(visible(dir)).toEqual({ 'ledger.json': 'second' });
  });
});
