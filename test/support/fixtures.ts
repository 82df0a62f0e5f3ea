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
export const REAL_WORLD =
  ['../shared', '../../shared'].map((s) => path.resolve(ROOT, s, 'real-world/mnist-cnn-pytorch')).find((d) => fs.existsSync(path.join(d, 'model.onnx'))) ??
  path.resolve(ROOT, '../shared/real-world/mnist-cnn-pytorch');
export const hasRealWorld = fs.existsSync(path.join(REAL_WORLD, 'model.onnx'));

/**
 * A folder of ../shared/real-world (beside the main checkout or a worktree one level deeper). Tests that
 * need one call this: it throws when the folder is missing, so a missing copy fails them loudly.
 */
export function realWorld(name: string): string {
  const found = ['../shared', '../../shared'].map((s) => path.resolve(ROOT, s, 'real-world', name)).find((d) => fs.existsSync(path.join(d, 'model.onnx')));
  if (!found) throw new Error(`../shared/real-world/${name}/model.onnx is missing: these tests need the models trained elsewhere beside the project`);
  return found;
}

export function tempDir(prefix = 'prune-guard-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
