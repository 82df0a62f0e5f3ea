import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { writeFileAtomic } from './atomicWrite.js';
import { onInterrupt } from './cleanup.js';
import { isToken, lockDir, LOCK_NAME, PRIVATE_DIR, type DirLock } from './lock.js';

const RUNS = 'runs';
const CURRENT = 'current';
const MANIFEST = 'runs.json';
const MANIFEST_FORMAT = 'prune-guard-runs/1';

interface Manifest {
  format: typeof MANIFEST_FORMAT;
  /** tokens of the run folders prune-guard created under runs/ and has not removed yet */
  runs: string[];
}

/** The link target a user-visible name holds: the same name in whichever set is current. */
const visibleTarget = (name: string): string => path.join(PRIVATE_DIR, CURRENT, name);

/**
 * An --out folder published as one transaction. Each run writes its whole set into a fresh folder
 * `OUT/.prune-guard/runs/<token>/`; the user-visible names (`OUT/ledger.json`, ...) are symlinks to
 * `.prune-guard/current/<name>`, and publishing is one rename(2) of a new `current` symlink over the old
 * one. A reader therefore sees the complete old set or the complete new set, never a mix, and a run
 * that fails, times out or is killed at any instant leaves the old set as it was.
 *
 * prune-guard deletes only what it can prove it created: run folders whose random token it recorded in
 * `.prune-guard/runs.json` before creating them, its own lock (by format and token), and visible links
 * in its exact form. Anything else in the way is refused, never removed.
 */
export class OutputDir {
  private done = false;
  private readonly unregister: () => void;

  private constructor(
    readonly dir: string,
    readonly staging: string,
    private readonly token: string,
    private readonly lock: DirLock,
    /** the folder did not exist before this run: remove it again when nothing is published */
    private readonly created: boolean,
  ) {
    this.unregister = onInterrupt(() => this.abort());
  }

  /**
   * Lock `dir`, clear what dead runs left, and open a fresh staging folder. `names` are the visible
   * names the run expects to publish: one already taken by something prune-guard did not write is
   * refused here, before any work.
   */
  static async open(dir: string, opts: { waitMs: number; onWait?: (message: string) => void; names?: readonly string[] }): Promise<OutputDir> {
    const created = !fs.existsSync(dir);
    let lock: DirLock;
    try {
      lock = await lockDir(dir, {
        waitMs: opts.waitMs,
        onWait: (o) => opts.onWait?.(`waiting for another prune-guard run (pid ${o.pid}) writing to ${dir}`),
      });
    } catch (e) {
      // refused before anything was ours: leave no empty folder of ours behind
      tryRmdir(path.join(dir, PRIVATE_DIR));
      if (created) tryRmdir(dir);
      throw e;
    }
    try {
      const priv = path.join(dir, PRIVATE_DIR);
      const current = currentToken(dir);
      const manifest = readManifest(dir);
      // runs recorded but not current belong to runs that died (SIGKILL) or sets already replaced
      for (const t of manifest.runs) if (t !== current) removeRun(priv, t);
      refuseInTheWay(dir, opts.names ?? []);
      const token = lock.token;
      writeManifest(dir, { format: MANIFEST_FORMAT, runs: current ? [current, token] : [token] });
      const staging = path.join(priv, RUNS, token);
      fs.mkdirSync(staging, { recursive: true });
      return new OutputDir(dir, staging, token, lock, created);
    } catch (e) {
      lock.release();
      tryRmdir(path.join(dir, PRIVATE_DIR));
      if (created) tryRmdir(dir);
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

  /**
   * Publish the staged set in one atomic step, then unlock. Names of the old set missing from the new
   * one (a pruned model a timed-out run no longer describes) disappear with the swap.
   */
  commit(hooks: { beforeSwap?: () => void } = {}): void {
    if (this.done) throw new Error('OutputDir: already committed or aborted');
    const priv = path.join(this.dir, PRIVATE_DIR);
    const names = fs.readdirSync(this.staging).filter((n) => !n.startsWith('.'));
    // an empty set replacing nothing: the folder stays as it was, without a private folder
    if (names.length === 0 && !currentToken(this.dir)) return this.abort();
    refuseInTheWay(this.dir, names);
    // links to names the old set lacks dangle until the swap: to a reader the name is still absent
    const made: string[] = [];
    try {
      for (const n of names) {
        const link = path.join(this.dir, n);
        if (isOurLink(link)) continue;
        fs.symlinkSync(visibleTarget(n), link);
        made.push(link);
      }
      hooks.beforeSwap?.();
      const next = path.join(priv, `${CURRENT}.${this.token}`);
      fs.symlinkSync(path.join(RUNS, this.token), next);
      fs.renameSync(next, path.join(priv, CURRENT));
    } catch (e) {
      for (const l of made) fs.rmSync(l, { force: true });
      fs.rmSync(path.join(priv, `${CURRENT}.${this.token}`), { force: true });
      if (e instanceof UserError) throw e;
      throw new UserError(`--out ${this.dir}: cannot publish the outputs (${(e as Error).message}); the previous outputs are unchanged`);
    }
    // published: what follows only tidies up, a failure here loses nothing
    this.done = true;
    this.unregister();
    const old = readManifest(this.dir).runs.filter((t) => t !== this.token);
    for (const t of old) removeRun(priv, t);
    writeManifest(this.dir, { format: MANIFEST_FORMAT, runs: [this.token] });
    for (const n of fs.readdirSync(this.dir)) {
      const link = path.join(this.dir, n);
      if (!names.includes(n) && isOurLink(link)) fs.rmSync(link, { force: true });
    }
    this.lock.release();
  }

  /** Drop everything staged and unlock; the folder is as the previous run left it. Safe to call twice. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    this.unregister();
    const priv = path.join(this.dir, PRIVATE_DIR);
    removeRun(priv, this.token);
    const current = currentToken(this.dir);
    writeManifest(this.dir, { format: MANIFEST_FORMAT, runs: current ? [current] : [] });
    if (!current) {
      // nothing was ever published here: leave no private folder behind
      fs.rmSync(path.join(priv, MANIFEST), { force: true });
      for (const d of [path.join(priv, RUNS), priv]) tryRmdir(d);
    }
    this.lock.release();
    if (this.created) tryRmdir(this.dir);
  }
}

/** rmdir only succeeds on an empty folder: never deletes what someone else put there. */
function tryRmdir(d: string): void {
  try {
    fs.rmdirSync(d);
  } catch {
    // not empty, or already gone
  }
}

/** Whether `file` is a visible name in the exact form prune-guard creates. */
function isOurLink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink() && fs.readlinkSync(file) === visibleTarget(path.basename(file));
  } catch {
    return false;
  }
}

/** Refuse a name the run would publish that something prune-guard did not write already holds. */
function refuseInTheWay(dir: string, names: readonly string[]): void {
  for (const n of names) {
    const file = path.join(dir, n);
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    if (st && !isOurLink(file)) {
      const what = st.isDirectory() ? 'a folder' : st.isSymbolicLink() ? 'a symlink' : 'a file';
      throw new UserError(`--out ${dir}: ${n} is ${what} prune-guard did not write, where this run publishes its ${n}; move it away or choose another --out`);
    }
  }
}

/** The token of the set `current` points to, if any. */
function currentToken(dir: string): string | undefined {
  const link = path.join(dir, PRIVATE_DIR, CURRENT);
  const st = fs.lstatSync(link, { throwIfNoEntry: false });
  if (!st) return undefined;
  const target = st.isSymbolicLink() ? fs.readlinkSync(link) : '';
  const [runs, token, ...rest] = target.split(path.sep);
  if (runs !== RUNS || !isToken(token) || rest.length > 0) {
    throw new UserError(`--out ${dir}: ${path.join(PRIVATE_DIR, CURRENT)} was not written by prune-guard; move ${PRIVATE_DIR} away or choose another --out`);
  }
  return token;
}

function readManifest(dir: string): Manifest {
  const file = path.join(dir, PRIVATE_DIR, MANIFEST);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { format: MANIFEST_FORMAT, runs: [] };
    throw e;
  }
  try {
    const m = JSON.parse(text) as Partial<Manifest>;
    if (m.format === MANIFEST_FORMAT && Array.isArray(m.runs) && m.runs.every(isToken)) return m as Manifest;
  } catch {
    // falls through: not ours
  }
  throw new UserError(`--out ${dir}: ${path.join(PRIVATE_DIR, MANIFEST)} was not written by prune-guard; move ${PRIVATE_DIR} away or choose another --out`);
}

function writeManifest(dir: string, m: Manifest): void {
  writeFileAtomic(path.join(dir, PRIVATE_DIR, MANIFEST), JSON.stringify(m) + '\n');
}

/** Remove one recorded run: its set folder and the `current.<token>` link it may have half made. */
function removeRun(priv: string, token: string): void {
  fs.rmSync(path.join(priv, RUNS, token), { recursive: true, force: true });
  fs.rmSync(path.join(priv, `${CURRENT}.${token}`), { force: true });
}

export { LOCK_NAME, PRIVATE_DIR };
