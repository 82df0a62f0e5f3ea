import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = path.join(ROOT, 'fixtures');
export const fixture = (name: string): string => path.join(FIXTURES, name);

/**
 * Where a ../shared/real-world model folder is: beside the checkout, or one level up for a checkout
 * nested one folder deeper. Read-only material trained elsewhere.
 */
function findRealWorld(name: string): string | undefined {
  return ['../shared', '../../shared'].map((s) => path.resolve(ROOT, s, 'real-world', name)).find((d) => fs.existsSync(path.join(d, 'model.onnx')));
}

/** A model and data trained elsewhere; the path beside the checkout when it is missing. */
export const REAL_WORLD = findRealWorld('mnist-cnn-pytorch') ?? path.resolve(ROOT, '../shared/real-world/mnist-cnn-pytorch');

/**
 * `file`, which must exist: a test that needs a missing file fails, naming it, and never skips. A file
 * of the shared real-world material also says where it was looked for and that CI must provide it.
 */
export function present(file: string): string {
  if (fs.existsSync(file)) return file;
  if (file.startsWith(REAL_WORLD + path.sep)) {
    const name = path.relative(REAL_WORLD, file);
    throw new Error(`shared real-world material missing: no ${name} in ${REAL_WORLD}; tests need it, and CI must provide ../shared beside the clone`);
  }
  throw new Error(`test input missing: ${file}`);
}

/** A file of the shared real-world model, checked with `present` when read. */
export const realWorld = (name: 'model.onnx' | 'test.npz' | 'calib.npz'): string => path.join(REAL_WORLD, name);

/**
 * A folder of ../shared/real-world. Tests that need one call this: it throws when the folder is missing,
 * so a missing copy fails them loudly.
 */
export function realWorldDir(name: string): string {
  const found = findRealWorld(name);
  if (!found) throw new Error(`../shared/real-world/${name}/model.onnx is missing: these tests need the models trained elsewhere beside the project`);
  return found;
}

export function tempDir(prefix = 'prune-guard-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
