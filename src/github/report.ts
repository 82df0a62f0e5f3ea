import { ICON, WORD } from '../ledger/budgetText.js';
import { timedOutRuns } from '../ledger/envelope.js';
import { renderBody, renderFooter } from '../ledger/render.js';
import type { Ledger, ModelLedger } from '../ledger/types.js';
import type { Section } from './fit.js';

/** Hidden marker that identifies prune-guard's sticky comment among a pull request's comments. */
export const MARKER = '<!-- prune-guard -->';

export interface Links {
  run?: string;
  artifacts?: string;
}

/** The ledger narrowed to one of its models: that model's verdict, without the runs that timed out. */
export function oneModel(ledger: Ledger, model: ModelLedger): Ledger {
  const { timed_out: _t, more_timed_out: _m, ...rest } = ledger;
  return { ...rest, models: [model], verdict: model.verdict };
}

/**
 * The pull-request comment, check-run summary and job summary: the verdict, the budgets that did not
 * pass with what to do about them, then each model's whole ledger folded (the sections `fitComment`
 * empties first when the text is too long). The same layout as the CLI's ledger.md. Pure: the same
 * inputs give the same text.
 */
export function renderReport(ledger: Ledger, opts: { title: string; links: Links; notes?: string[] }): Section[] {
  const sections: Section[] = [MARKER, `### prune-guard ${ICON[ledger.verdict]} ${WORD[ledger.verdict]} · ${opts.title}`];
  if (opts.notes?.length) sections.push(opts.notes.map((n) => `> ${n}`).join('\n>\n'));
  if (ledger.models.length === 0 && timedOutRuns(ledger).length === 0) {
    sections.push('_No model to check._');
  } else {
    const { review, folds } = renderBody(ledger, 'action');
    sections.push(review, ...folds);
  }
  const links = [opts.links.run && `[workflow run](${opts.links.run})`, opts.links.artifacts && `[artifacts (ledger.json, pruned models)](${opts.links.artifacts})`].filter((l): l is string => !!l);
  sections.push(renderFooter(ledger, links));
  return sections;
}
