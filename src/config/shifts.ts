import { UserError } from '../errors.js';

/**
 * Distribution-shift sets given as `NAME=path` (the CLI's `--shift`, the action's `shift-data`). Names
 * label the ledger's rows, so two sets may not share one; `subject(entry)` names the entry in messages.
 */
export function parseShiftSets(entries: readonly string[], subject: (entry: string) => string): { name: string; path: string }[] {
  const seen = new Map<string, string>();
  return entries.map((entry) => {
    const eq = entry.indexOf('=');
    const name = entry.slice(0, Math.max(eq, 0)).trim();
    const path = entry.slice(eq + 1).trim();
    if (eq < 0 || name === '' || path === '') throw new UserError(`${subject(entry)} must be NAME=path, e.g. rotated=data/rotated.npz`);
    const earlier = seen.get(name);
    if (earlier !== undefined) throw new UserError(`${subject(entry)} reuses the name '${name}' of ${subject(earlier)}; give each shift set its own name`);
    seen.set(name, entry);
    return { name, path };
  });
}
