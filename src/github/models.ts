import * as fs from 'node:fs';
import * as path from 'node:path';
import picomatch from 'picomatch';
import type { Shard } from './inputs.js';

const SKIP_DIRS = new Set(['.git', 'node_modules']);

/** A matcher over repository-relative POSIX paths for the `models` globs. */
export function modelMatcher(globs: readonly string[]): (file: string) => boolean {
  const isMatch = picomatch([...globs], { dot: false });
  return (file) => file.toLowerCase().endsWith('.onnx') && isMatch(file);
}

/** Every file under `root` matching the globs, as sorted repository-relative POSIX paths. */
export function findModels(root: string, globs: readonly string[], skip: readonly string[] = []): string[] {
  const match = modelMatcher(globs);
  const skipped = new Set(skip.map((s) => path.resolve(root, s)));
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIP_DIRS.has(entry.name) && !skipped.has(full)) walk(full);
      } else if (entry.isFile()) {
        const rel = path.relative(root, full).split(path.sep).join('/');
        if (match(rel)) found.push(rel);
      }
    }
  };
  walk(root);
  return found.sort();
}

/**
 * The models runner `index` of `count` checks: sorted by path, every count-th starting at index-1, so
 * every runner of a matrix computes the same split and together they cover each model exactly once.
 */
export function shardModels(models: readonly string[], shard: Shard | undefined): string[] {
  const sorted = [...models].sort();
  if (!shard) return sorted;
  return sorted.filter((_, i) => i % shard.count === shard.index - 1);
}
