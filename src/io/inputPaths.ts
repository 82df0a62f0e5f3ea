import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';

export interface NamedInput {
  /** how the user gave it: '--model', '--shift rotate', 'config file' */
  flag: string;
  path: string;
}

/** The path with every existing part's symlinks resolved, so two spellings of one place compare equal. */
export function resolved(p: string): string {
  const abs = path.resolve(p);
  const missing: string[] = [];
  let dir = abs;
  for (;;) {
    try {
      return path.join(fs.realpathSync(dir), ...missing.reverse());
    } catch {
      const parent = path.dirname(dir);
      if (parent === dir) return abs;
      missing.push(path.basename(dir));
      dir = parent;
    }
  }
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Refuse, before any work, an input that is the output folder or sits inside it: the run replaces that
 * folder's contents as one set, so such an input (`--model OUT/ledger.json`, a file named like the lock)
 * would be overwritten or taken for the run's own file.
 */
export function refuseInputsInOutput(out: string, inputs: readonly NamedInput[]): void {
  const outDir = resolved(out);
  for (const input of inputs) {
    if (inside(resolved(input.path), outDir)) {
      throw new UserError(`${input.flag} ${input.path}: sits inside the output folder ${out}, which this run replaces; move the file out of it or choose another --out`);
    }
  }
}
