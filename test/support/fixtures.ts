import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = path.join(ROOT, 'fixtures');
export const fixture = (name: string): string => path.join(FIXTURES, name);

/**
 * A model and data trained elsewhere (shared material beside the project); read-only. A git worktree
 * sits one level deeper than the main checkout, so look beside both.
 */
const REAL_WORLD_CANDIDATES = ['../shared', '../../shared'].map((s) => path.resolve(ROOT, s, 'real-world/mnist-cnn-pytorch'));
export const REAL_WORLD = REAL_WORLD_CANDIDATES.find((d) => fs.existsSync(path.join(d, 'model.onnx'))) ?? REAL_WORLD_CANDIDATES[0];

/**
 * `file`, which must exist: a test that needs a missing file fails, naming it, and never skips. A file
 * of the shared real-world material also says where it was looked for and that CI must provide it.
 */
export function present(file: string): string {
  if (fs.existsSync(file)) return file;
  if (file.startsWith(REAL_WORLD + path.sep)) {
    const name = path.relative(REAL_WORLD, file);
    throw new Error(`shared real-world material missing: no ${name} in ${REAL_WORLD_CANDIDATES.join(' or ')}; tests need it, and CI must provide ../shared beside the clone`);
  }
  throw new Error(`test input missing: ${file}`);
}

/** A file of the shared real-world model, checked with `present` when read. */
export const realWorld = (name: 'model.onnx' | 'test.npz' | 'calib.npz'): string => path.join(REAL_WORLD, name);

export function tempDir(prefix = 'prune-guard-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
