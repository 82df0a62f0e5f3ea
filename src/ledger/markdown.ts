import { markdownTable } from 'markdown-table';
import { markdownCell } from '../util/escape.js';

/** Markdown building blocks shared by the ledger file, the pull-request comment and the check runs. */

export const DASH = '—';

/** Cells a column may hold and still say nothing: a column with only these is left out. */
const EMPTY = new Set(['', DASH, 'not available']);

/**
 * A GitHub-flavoured table; a column whose every body cell is empty (energy on a runner without power
 * counters, a base column without a base) is left out rather than shown blank in every row.
 */
export function table(rows: readonly (readonly string[])[]): string {
  const [head, ...body] = rows;
  const keep = head.map((_, j) => body.length === 0 || body.some((r) => !EMPTY.has((r[j] ?? '').trim())));
  return markdownTable(
    rows.map((row) => row.filter((_, j) => keep[j]).map(markdownCell)),
    { alignDelimiters: false },
  );
}

/**
 * Numbers kept with their units and signs: "≤ 1.00 pt" must not wrap into "≤ / 1.00 / pt" in a narrow
 * column, while "[3.69 pt, 6.44 pt] 95%" may still break after its comma.
 */
export function nowrap(text: string): string {
  return text.replace(/([≤≥]) /g, '$1\u00a0').replace(/(\d) (?=(?:pt|ms|[kMG]i?B|B|x)\b)/g, '$1\u00a0').replace(/\] (?=\d)/g, ']\u00a0');
}

/**
 * A budget name for a table cell, with non-breaking hyphens: a browser squeezing a table breaks after
 * a hyphen (`class-` / `accuracy-drop`), and a name is read whole. Running text keeps plain hyphens.
 */
export function unbroken(name: string): string {
  return name.replace(/-/g, '\u2011');
}

/** A section folded in `<details>`. */
export interface Fold {
  summary: string;
  body: string;
}

export function details(f: Fold): string {
  return `<details><summary>${f.summary}</summary>\n\n${f.body}\n\n</details>`;
}

/**
 * What a reader may see of a path: repository- or output-relative as given, but never a runner's
 * absolute path (`/home/runner/work/...`), which says nothing and leaks the machine's layout.
 */
export function shownPath(p: string): string {
  if (!/^(?:\/|[A-Za-z]:[\\/]|\\\\)/.test(p)) return p;
  return p.split(/[\\/]/).pop() || p;
}

/** Absolute paths inside free text (a budget's detail, a note) shortened the same way. */
export function withoutAbsolutePaths(text: string): string {
  return text.replace(/(^|[\s(`'"=])((?:\/|[A-Za-z]:\\)[^\s`'")]*[\\/][^\s`'")]*)/g, (_, pre: string, p: string) => pre + shownPath(p));
}
