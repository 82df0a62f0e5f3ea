import { budgetPhrase, closeCall, ICON, intervalText, limitText, marginText, straddles, valueText, whyText, WORD, type Compared } from './budgetText.js';
import { percent, points } from './format.js';
import { markdownCell, markdownCode } from '../util/escape.js';
import { nowrap, shownPath, table, unbroken, withoutAbsolutePaths } from './markdown.js';
import { modelSummary, summaryParts } from './renderSummary.js';
import type { BudgetResult, Ledger, ModelLedger } from './types.js';

/**
 * The part of a ledger a reviewer reads before anything is expanded, answering "may I merge, and if
 * not, why?": every budget that did not pass with its limit, value and margin, whether it is new in the
 * pull request, where its limit was set and what would change the outcome, then those budgets in one
 * table. Everything else is folded below it.
 */

/** Whose names the levers use: the CLI's flags or the GitHub Action's inputs. */
export type Via = 'cli' | 'action';

/** One budget result of one model, with what it compares. */
export interface Judged {
  model: ModelLedger;
  budget: BudgetResult;
  compared: Compared;
}

/** Every budget of a model: its own pruning (or a compare run's base → head), then head against base. */
export function judged(model: ModelLedger): Judged[] {
  const own: Compared = model.method === 'compare' ? 'base → head' : 'dense → pruned';
  return [
    ...model.budgets.map((budget) => ({ model, budget, compared: own })),
    ...(model.vs_base?.budgets ?? []).map((budget): Judged => ({ model, budget, compared: 'base → head' })),
  ];
}

/** Budgets that did not pass, failures first. */
export function notPassed(models: readonly ModelLedger[]): Judged[] {
  const all = models.flatMap(judged).filter((j) => j.budget.verdict !== 'pass');
  return [...all.filter((j) => j.budget.verdict === 'fail'), ...all.filter((j) => j.budget.verdict === 'warn')];
}

/** The same budget on the base run of a pull request, when the ledger has it. */
function onBase(j: Judged): BudgetResult | undefined {
  if (j.compared !== 'dense → pruned') return undefined;
  return j.model.vs_base?.base_budgets?.find((b) => b.name === j.budget.name);
}

/** Absolute limits a `compare` run can hold the base model to as well: its own file size and p95 latency. */
function compareBase(j: Judged): string {
  const base = j.model.steps[0];
  const b = j.budget;
  const value = b.name === 'max-size-bytes' ? base?.size_bytes : b.name === 'p95-latency-ms' ? base?.latency?.p95_ms : undefined;
  if (value == null) return '';
  const shown = valueText({ ...b, actual: value });
  const over = b.direction === 'max' ? value > b.limit : value < b.limit;
  return over ? `already over on base (${shown})` : `new in head (base ${shown})`;
}

/** "new in this PR (base 0.40 pt)", "already failing on base (8.10 pt)", or '' when there is no base run. */
export function baseStatus(j: Judged): string {
  if (j.model.method === 'compare') return compareBase(j);
  const b = onBase(j);
  if (!b) return '';
  const value = valueText(b) ?? 'not measured';
  if (b.verdict === 'fail') return `already failing on base (${value})`;
  if (b.verdict === 'warn') return `warned on base too (${value})`;
  return `new in this PR (base ${value})`;
}

/** Why a warning is not a pass: not measured, or an interval across the limit. */
function warnReason(b: BudgetResult): string {
  if (b.actual === null) return b.detail;
  if (straddles(b)) return closeCall(b);
  return whyText(b);
}

/**
 * `accuracy-drop` (dense → pruned) **8.45 pt**, limit ≤ 1 pt, 7.45 pt over · new in this PR (base 0.40 pt);
 * `icon: false` where the level is shown otherwise (an annotation's).
 */
export function budgetLine(j: Judged, opts: { icon?: boolean } = {}): string {
  const b = j.budget;
  const value = valueText(b);
  const parts = [`${opts.icon === false ? '' : `${ICON[b.verdict]} `}\`${b.name}\` (${j.compared})`];
  if (value === null) parts.push(`limit ${limitText(b)}: ${warnReason(b)}`);
  else {
    let text = `**${value}**, limit ${limitText(b)}, ${marginText(b)}`;
    if (b.verdict === 'warn' || straddles(b)) text += `: ${warnReason(b)}`;
    parts.push(text);
  }
  const status = baseStatus(j);
  return parts.join(' ') + (status ? ` · ${status}` : '');
}

/** `accuracy-drop` (dense → pruned) **9.96 pt** > 1 pt, or "too close to ≤ 1 pt to call": one budget of many. */
function shortBudget(j: Judged): string {
  const b = j.budget;
  const name = `\`${b.name}\`${j.compared === 'base → head' ? ' vs base' : ''}`;
  const value = valueText(b);
  if (value === null) return `${ICON.warn} ${name} not measured`;
  if (b.verdict !== 'pass' && straddles(b)) return `${ICON[b.verdict]} ${name} **${value}**, too close to ${limitText(b)} to call`;
  return `${ICON[b.verdict]} ${name} **${value}** ${b.direction === 'max' ? '>' : '<'} ${limitText(b).slice(2)} (${marginText(b)})`;
}

/** One model of several in the headline: its name and every budget it did not pass, in one line. */
function modelLine(m: ModelLedger, items: readonly Judged[]): string {
  const mine = items.filter((j) => j.model === m);
  return `${markdownCode(shownPath(m.model))}: ${mine.map(shortBudget).join('; ')}`;
}

/** Where a limit came from, for the "what to do" line: "set at `prune-guard.yml:12`", "the default". */
function setAt(b: BudgetResult, via: Via): string {
  if (b.set_at) return `set at ${markdownCode(withoutAbsolutePaths(b.set_at))}`;
  if (b.source === 'default') return 'the default';
  if (b.source === 'config') return 'set in the config file';
  return via === 'action' ? 'set by the `budgets` input' : 'set by `--budget`';
}

const QUALITY = new Set(['accuracy-drop', 'class-accuracy-drop', 'ece-increase', 'shift-accuracy-drop']);
const zerosStayDense = (method: string): boolean => method === 'unstructured' || /^\d+:\d+$/.test(method);
const recovered = (m: ModelLedger): boolean => m.steps.some((s) => s.name.startsWith('recover:'));

/**
 * A pull request whose head model is already less accurate than base before any pruning: the model
 * change, not the pruning settings, is what a reviewer should look at.
 */
function headItselfWorse(m: ModelLedger): string | undefined {
  const head = m.steps[0]?.accuracy;
  const base = m.vs_base?.steps[0]?.accuracy;
  const limit = m.vs_base?.budgets.find((b) => b.name === 'accuracy-drop')?.limit;
  if (head == null || base == null || limit === undefined || base - head <= limit) return undefined;
  return `The head model is ${points(base - head)} less accurate than base before pruning (${percent(base, 2)} → ${percent(head, 2)}): the model change itself, not pruning, loses it.`;
}

/** Levers that would change the outcome, in the order a user would try them. */
function levers(items: readonly Judged[], via: Via): string[] {
  const out: string[] = [];
  const add = (text: string) => {
    if (!out.includes(text)) out.push(text);
  };
  for (const { model, budget, compared } of items) {
    if (budget.actual === null) continue;
    const method = model.method;
    if (straddles(budget)) {
      add(budget.name.includes('latency') ? 'run more latency `runs` to narrow the interval' : 'evaluate on more samples to narrow the interval');
      continue;
    }
    if (QUALITY.has(budget.name) && method !== 'compare' && !(compared === 'base → head' && headItselfWorse(model))) {
      add(`lower \`sparsity\` (now ${model.target_sparsity})`);
      if (!recovered(model)) add(`add ${via === 'action' ? '`calib-data`' : '`--calib`'} so recovery wins accuracy back`);
    }
    if ((budget.name === 'min-speedup' || budget.name === 'p95-latency-ms') && method !== 'compare') {
      add(zerosStayDense(method) ? 'use `method: structured` (CPU kernels multiply unstructured zeros like any weight)' : `raise \`sparsity\` (now ${model.target_sparsity})`);
    }
    if (budget.name === 'max-size-bytes' && method !== 'compare') {
      add(zerosStayDense(method) ? 'use `method: structured` (zeros still take their place in the file)' : `raise \`sparsity\` (now ${model.target_sparsity})`);
    }
    if (budget.name === 'latency-regression') add('find why the head model runs slower than base');
    if (budget.name === 'target-reduction') add('let the groups left whole be pruned (the notes say why each was) or ask for less');
  }
  // loosening a limit is raising a maximum and lowering a minimum
  const failing = new Set(items.filter((j) => j.budget.verdict === 'fail').map((j) => j.budget.direction));
  if (failing.size === 2) add('loosen the limits');
  else if (failing.has('max')) add('raise the limit');
  else if (failing.has('min')) add('lower the limit');
  return out;
}

const and = (xs: readonly string[]): string => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

/** "**What to do:** `accuracy-drop` ≤ 1 pt is set at `prune-guard.yml:6`. Lower `sparsity` (now 0.8), …" */
export function whatToDo(items: readonly Judged[], via: Via): string {
  const where = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const { budget } of items) {
    const name = `\`${budget.name}\` ${limitText(budget)}`;
    if (seen.has(name)) continue;
    seen.add(name);
    const at = setAt(budget, via);
    where.set(at, [...(where.get(at) ?? []), name]);
  }
  const set = [...where].map(([at, names]) => {
    if (at === 'the default') return `${and(names)} ${names.length === 1 ? 'is the default' : 'are defaults'}`;
    return `${and(names)} ${names.length === 1 ? 'is' : 'are'} ${at}`;
  });
  const causes = [...new Set(items.filter((j) => j.compared === 'base → head').map((j) => headItselfWorse(j.model)))].filter((c): c is string => !!c);
  const todo = levers(items, via);
  const first = todo.length ? todo[0][0].toUpperCase() + todo[0].slice(1) : '';
  const rest = todo.slice(1);
  const options = !first ? '' : rest.length === 0 ? `${first}.` : `${[first, ...rest.slice(0, -1)].join(', ')}, or ${rest.at(-1)}.`;
  return ['**What to do:**', `${set.join('; ')}.`, ...causes, options].filter(Boolean).join(' ');
}

/**
 * The shortest end of each model's path that tells it from the others (`cnn-bn.onnx`, or
 * `team-a/model.onnx` when two files share a name): a table column narrow enough not to squeeze the rest.
 */
export function shortNames(paths: readonly string[]): Map<string, string> {
  const parts = paths.map((p) => shownPath(p).split('/'));
  const out = new Map<string, string>();
  parts.forEach((segments, i) => {
    for (let n = 1; n <= segments.length; n++) {
      const tail = segments.slice(-n).join('/');
      if (n === segments.length || parts.every((other, k) => k === i || other.slice(-n).join('/') !== tail)) {
        out.set(paths[i], tail);
        break;
      }
    }
  });
  return out;
}

/** The unfolded table of every budget that did not pass, dense → pruned and base → head together. */
export function notPassedTable(items: readonly Judged[], manyModels: boolean): string {
  const names = shortNames([...new Set(items.map((j) => j.model.model))]);
  return table([
    [...(manyModels ? ['Model'] : []), 'Budget', 'Limit', 'Measured', 'Margin', 'On base', 'Why'],
    ...items.map((j) => {
      const b = j.budget;
      const value = valueText(b);
      const interval = intervalText(b);
      return [
        ...(manyModels ? [markdownCode(unbroken(names.get(j.model.model)!))] : []),
        `${ICON[b.verdict]} \`${unbroken(b.name)}\`<br><sub>${j.compared}</sub>`,
        nowrap(limitText(b)),
        value === null ? 'not measured' : nowrap(value) + (interval ? `<br><sub>${nowrap(interval)}</sub>` : ''),
        nowrap(marginText(b) ?? '—'),
        baseStatus(j),
        whyText(b, { interval: false }),
      ];
    }),
  ]);
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** "2 budgets fail and 1 warns", "1 budget fails". */
function counts(items: readonly Judged[]): string {
  const fail = items.filter((j) => j.budget.verdict === 'fail').length;
  const warn = items.length - fail;
  const parts = [];
  if (fail) parts.push(`${plural(fail, 'budget')} ${fail === 1 ? 'fails' : 'fail'}`);
  if (warn) parts.push(`${fail ? warn : plural(warn, 'budget')} ${warn === 1 ? 'warns' : 'warn'}`);
  return parts.join(' and ');
}

/**
 * The reviewer's first screen: what failed or warned and by how much, what to do, and the table of the
 * budgets that did not pass; or, when everything passes, one line per model saying so.
 */
export function renderReview(ledger: Ledger, via: Via): string {
  const models = ledger.models;
  if (models.length === 0) return '';
  const items = notPassed(models);
  const many = models.length > 1;
  const passing = models.filter((m) => judged(m).every((j) => j.budget.verdict === 'pass'));
  if (items.length === 0) {
    const total = models.reduce((n, m) => n + judged(m).length, 0);
    const scopes = models.some((m) => m.vs_base) ? ' (dense → pruned and base → head)' : '';
    const on = many ? plural(models.length, 'model') : markdownCode(shownPath(models[0].model));
    return `**Every budget passes**: ${plural(total, 'budget')} on ${on}${scopes}${many ? '' : `; ${markdownCell(summaryParts(models[0]))}`}.`;
  }
  const scope = many ? ` on ${models.length - passing.length} of ${plural(models.length, 'model')}` : ` on ${markdownCode(shownPath(models[0].model))}`;
  const lines: string[] = [];
  // failing models first, then those that only warn; each keeps the ledger's (path) order
  const flagged = [...models.filter((m) => m.verdict === 'fail'), ...models.filter((m) => m.verdict !== 'fail' && !passing.includes(m))];
  const bullets = many ? flagged.map((m) => `- ${modelLine(m, items)}`) : items.map((j) => `- ${budgetLine(j)}`);
  lines.push(`**${counts(items)}**${scope}:\n\n${bullets.join('\n')}`);
  lines.push(whatToDo(items, via));
  lines.push(notPassedTable(items, many));
  if (many && passing.length) lines.push(`${plural(passing.length, 'other model')} pass${passing.length === 1 ? 'es' : ''} every budget.`);
  return lines.join('\n\n');
}

/** Budgets named in a title; the rest are counted, the check's summary lists them all. */
const TITLE_BUDGETS = 3;

/**
 * One model's verdict as a plain line (check-run title, commit status): what failed and by how much,
 * `FAIL: accuracy-drop 2.20 pt > 1 pt; class-accuracy-drop 6.50 pt > 5 pt`, or what passing pruning did.
 */
export function verdictTitle(model: ModelLedger): string {
  const items = notPassed([model]);
  if (items.length === 0) return `PASS · ${modelSummary(model)}`;
  const shown = items.slice(0, TITLE_BUDGETS).map((j) => budgetPhrase(j.budget, j.compared));
  const more = items.length - shown.length;
  return `${WORD[model.verdict]}: ${shown.join('; ')}${more ? `; ${more} more` : ''}`;
}

/** Markdown emphasis and code marks dropped, for the places GitHub shows text as typed. */
export const plain = (markdown: string): string => markdown.replace(/\*\*|`|<br>|<\/?sub>/g, '').replace(/\u00a0/g, ' ').replace(/\u2011/g, '-');
