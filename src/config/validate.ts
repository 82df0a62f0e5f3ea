import type * as z from 'zod/mini';
import { boundOf, formOf } from './issues.js';
import { CONFIG_FILE, VALID_KEYS } from './schema.js';
import { suggestionTail } from './suggest.js';

export type KeyPath = (string | number)[];

/** One thing wrong with a raw (kebab-case, as written) config; `message` has no location prefix. */
export interface ConfigProblem {
  path: KeyPath;
  message: string;
}

/** `budgets.accuracy-drop`, `batch-sizes[1]` */
export function formatKeyPath(path: readonly (string | number)[]): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

/** A value as messages quote it: JSON, cut at 40 characters. */
export function show(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>((v, key) => (v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[key] : undefined), raw);
}

/**
 * What one issue of the declaration's schema says, with `subject` naming the setting (`'sparsity'` in
 * the file, `--sparsity` for a flag): "<subject> must be <expect> (got <value>; <bound>)".
 */
export function describeIssue(issue: z.core.$ZodIssue, subject: string, value: string): string {
  const form = formOf(issue);
  if (form === 'plain') return `${subject}: ${issue.message}`;
  if (form === 'said') return `${subject} ${issue.message} (got ${value})`;
  const bound = boundOf(issue as Parameters<typeof boundOf>[0]);
  return `${subject} must be ${issue.message} (got ${value}${bound ? `; ${bound}` : ''})`;
}

function fromIssue(issue: z.core.$ZodIssue, raw: unknown): ConfigProblem[] {
  const path = issue.path as KeyPath;
  if (issue.code === 'unrecognized_keys') {
    const valid = issue.message.startsWith(VALID_KEYS) ? issue.message.slice(VALID_KEYS.length).split(', ') : [];
    return issue.keys.map((key) => {
      const full = [...path, key];
      return { path: full, message: `unknown key '${formatKeyPath(full)}'${suggestionTail(key, valid)}` };
    });
  }
  const value = show(valueAt(raw, path));
  if (path.length === 0) return [{ path, message: `the config must be ${issue.message} (got ${value})` }];
  const subject = formOf(issue) === 'plain' ? formatKeyPath(path) : `'${formatKeyPath(path)}'`;
  return [{ path, message: describeIssue(issue, subject, value) }];
}

/** Every problem in a raw config, in the declaration's order; empty when it is valid. */
export function findProblems(raw: unknown): ConfigProblem[] {
  const result = CONFIG_FILE.safeParse(raw);
  if (result.success) return [];
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const issue of result.error.issues) {
    for (const problem of fromIssue(issue, raw)) {
      const key = JSON.stringify(problem.path);
      // a value can break several checks at once; one message per key is enough
      if (seen.has(key)) continue;
      seen.add(key);
      problems.push(problem);
    }
  }
  return problems;
}
