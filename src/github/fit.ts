import { details, type Fold } from '../ledger/markdown.js';

/** GitHub rejects issue and pull-request comments longer than this (characters). */
export const COMMENT_LIMIT = 65_536;

/** A section folded in `<details>` is the first thing dropped when the comment is too long. */
export type Section = string | Fold;

const omitted = (f: Fold): Fold => ({
  summary: f.summary,
  body: `_Omitted (${f.body.length} characters) to stay within GitHub's comment limit: the job summary and the ledger artifact have it in full._`,
});

function join(sections: readonly Section[]): string {
  return sections.map((s) => (typeof s === 'string' ? s : details(s))).join('\n\n') + '\n';
}

/** Cuts at `max` characters without splitting a surrogate pair, then closes an open code fence and details. */
function hardCut(text: string, max: number): string {
  const note = '\n\n_…truncated to stay within GitHub\'s comment limit: the job summary and the ledger artifact have it in full._\n';
  const closers = '\n```\n</details>\n'.length;
  let cut = text.slice(0, Math.max(0, max - note.length - closers));
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  if ((cut.match(/^```/gm) ?? []).length % 2 === 1) cut += '\n```';
  const open = (cut.match(/<details>/g) ?? []).length - (cut.match(/<\/details>/g) ?? []).length;
  if (open > 0) cut += '\n</details>';
  return cut + note;
}

/**
 * Joins the sections into one comment of at most `limit` characters: folded sections are emptied
 * (largest first, with a note saying where the full text is) before anything else is cut.
 */
export function fitComment(sections: readonly Section[], limit = COMMENT_LIMIT): string {
  const parts = [...sections];
  let text = join(parts);
  while (text.length > limit) {
    let largest = -1;
    parts.forEach((p, i) => {
      if (typeof p !== 'string' && !p.body.startsWith('_Omitted') && (largest < 0 || p.body.length > (parts[largest] as Fold).body.length)) largest = i;
    });
    if (largest < 0) return hardCut(text, limit);
    parts[largest] = omitted(parts[largest] as Fold);
    text = join(parts);
  }
  return text;
}
