import { markdownTable } from 'markdown-table';
import { markdownCell } from '../util/escape.js';
import { bytes, ms, percent, points, ratio } from '../ledger/format.js';
import { renderHeadline, renderMarkdown, timedOutLines } from '../ledger/render.js';
import type { BudgetName, BudgetResult, Ledger, ModelLedger, Step, Verdict } from '../ledger/types.js';
import type { Section } from './fit.js';

/** Hidden marker that identifies prune-guard's sticky comment among a pull request's comments. */
export const MARKER = '<!-- prune-guard -->';

const ICON: Record<Verdict, string> = { pass: '✅', warn: '⚠️', fail: '❌' };
const WORD: Record<Verdict, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' };
const DASH = '—';

export interface Links {
  run?: string;
  artifacts?: string;
}

const cell = markdownCell;
const table = (rows: string[][]): string => markdownTable(rows.map((r) => r.map(cell)), { alignDelimiters: false });
const final = (steps: readonly Step[]): Step => steps[steps.length - 1];
const orDash = (x: number | null | undefined, show: (x: number) => string): string => (x == null ? DASH : show(x));

function signed(x: number, show: (x: number) => string): string {
  const text = show(Math.abs(x));
  // a change that rounds to zero is shown as one, whatever its sign
  if (text === show(0)) return `±${text}`;
  return x > 0 ? `+${text}` : `−${text}`;
}

function change(a: number | null | undefined, b: number | null | undefined, show: (x: number) => string): string {
  return a == null || b == null ? DASH : signed(b - a, show);
}

/** Base shipped model, head shipped model and the change, metric by metric. */
function baseTable(base: Step, head: Step): string {
  const p50 = (s: Step) => s.latency?.p50_ms;
  return table([
    ['', 'Base', 'Head', 'Change'],
    ['Sparsity', percent(base.sparsity), percent(head.sparsity), change(base.sparsity, head.sparsity, (x) => points(x, 1))],
    ['Accuracy', orDash(base.accuracy, (x) => percent(x, 2)), orDash(head.accuracy, (x) => percent(x, 2)), change(base.accuracy, head.accuracy, (x) => points(x, 2))],
    ['ECE', orDash(base.ece, (x) => percent(x, 2)), orDash(head.ece, (x) => percent(x, 2)), change(base.ece, head.ece, (x) => points(x, 2))],
    [`p50 latency${head.latency ? ` (b=${head.latency.batch})` : ''}`, orDash(p50(base), ms), orDash(p50(head), ms), change(p50(base), p50(head), ms)],
    ['Size', bytes(base.size_bytes), bytes(head.size_bytes), change(base.size_bytes, head.size_bytes, bytes)],
    ['Gzip', bytes(base.gzip_bytes), bytes(head.gzip_bytes), change(base.gzip_bytes, head.gzip_bytes, bytes)],
  ]);
}

function limitText(name: BudgetName, x: number): string {
  if (name === 'latency-regression') return percent(x);
  if (name === 'min-speedup') return ratio(x);
  if (name === 'p95-latency-ms') return ms(x);
  if (name === 'max-size-bytes') return bytes(x);
  return points(x);
}

function budgetRows(budgets: readonly BudgetResult[]): string {
  return table([
    ['Budget vs base', 'Limit', 'Actual', 'Verdict', 'Detail'],
    ...budgets.map((b) => [
      `\`${b.name}\``,
      `${b.direction === 'max' ? '≤' : '≥'} ${limitText(b.name, b.limit)}`,
      b.actual === null ? DASH : limitText(b.name, b.actual),
      `${ICON[b.verdict]} ${b.verdict}`,
      b.detail,
    ]),
  ]);
}

const label = (t: string): string => `"${t.replace(/"/g, "'")}"`;

/** A Mermaid bar chart (GitHub renders `xychart-beta`); undefined when a value is missing. */
export function barChart(title: string, yLabel: string, bars: [string, number | null | undefined][]): string | undefined {
  const known = bars.filter((b): b is [string, number] => b[1] != null && Number.isFinite(b[1]));
  if (known.length === 0) return undefined;
  const values = known.map((b) => Number(b[1].toFixed(3)));
  return [
    '```mermaid',
    'xychart-beta',
    `  title ${label(title)}`,
    `  x-axis [${known.map((b) => label(b[0])).join(', ')}]`,
    `  y-axis ${label(yLabel)} 0 --> ${Number((Math.max(...values) * 1.1 || 1).toFixed(3))}`,
    `  bar [${values.join(', ')}]`,
    '```',
  ].join('\n');
}

function modelCharts(model: ModelLedger): string {
  const steps: [string, Step][] = [['dense', model.steps[0]]];
  if (model.vs_base) steps.push(['base', final(model.vs_base.steps)]);
  steps.push([model.vs_base ? 'head' : 'pruned', final(model.steps)]);
  // a chart sits in a fenced block: a name must not end the fence or the line
  const name = markdownCell(model.model.split('/').pop()!).replace(/`/g, "'");
  const charts = [
    barChart(`${name}: accuracy`, 'accuracy %', steps.map(([n, s]) => [n, s.accuracy == null ? null : s.accuracy * 100])),
    barChart(`${name}: p50 latency`, 'ms', steps.map(([n, s]) => [n, s.latency?.p50_ms])),
  ];
  return charts.filter(Boolean).join('\n\n');
}

/** The ledger narrowed to one of its models: that model's verdict, without the runs that timed out. */
export function oneModel(ledger: Ledger, model: ModelLedger): Ledger {
  const { timed_out: _t, more_timed_out: _m, ...rest } = ledger;
  return { ...rest, models: [model], verdict: model.verdict };
}

function singleModelMarkdown(ledger: Ledger, model: ModelLedger): string {
  // the CLI's ledger rendering without its title line: the comment has its own
  return renderMarkdown(oneModel(ledger, model)).split('\n').slice(2).join('\n').trim();
}

function overview(models: readonly ModelLedger[]): string {
  return table([
    ['Model', 'Verdict', 'Sparsity', 'Accuracy', 'vs base', 'p50', 'Size'],
    ...models.map((m) => {
      const f = final(m.steps);
      const b = m.vs_base ? final(m.vs_base.steps) : undefined;
      return [
        `\`${m.model}\``,
        `${ICON[m.verdict]} ${m.verdict}`,
        percent(f.sparsity),
        orDash(f.accuracy, (x) => percent(x, 2)),
        b ? `${change(b.accuracy, f.accuracy, (x) => points(x, 2))} accuracy` : 'new model',
        orDash(f.latency?.p50_ms, ms),
        bytes(f.size_bytes),
      ];
    }),
  ]);
}

/**
 * The pull-request comment and job summary: verdict, one overview row per model, then per model the
 * comparison with base and its full ledger and charts folded. Pure: the same inputs give the same text.
 */
export function renderReport(ledger: Ledger, opts: { title: string; links: Links; notes?: string[] }): Section[] {
  const sections: Section[] = [MARKER, `### prune-guard ${ICON[ledger.verdict]} ${WORD[ledger.verdict]} · ${opts.title}`];
  if (opts.notes?.length) sections.push(opts.notes.map((n) => `> ${n}`).join('\n>\n'));
  const timedOut = timedOutLines(ledger);
  if (timedOut.length) sections.push(timedOut.join('\n\n'));
  if (ledger.models.length === 0) {
    if (!timedOut.length) sections.push('_No model to check._');
  } else {
    sections.push(overview(ledger.models));
    for (const m of ledger.models) {
      const parts = [renderHeadline(m)];
      if (m.vs_base) {
        parts.push(`Against \`${m.vs_base.model}\` at ${m.vs_base.ref.slice(0, 12)} (merge base), both pruned the same way, then measured together (same data, latency interleaved):`);
        const [base, head] = m.vs_base.pair ?? [final(m.vs_base.steps), final(m.steps)];
        parts.push(baseTable(base, head));
        if (m.vs_base.budgets.length) parts.push(budgetRows(m.vs_base.budgets));
      }
      sections.push(parts.join('\n\n'));
      const charts = modelCharts(m);
      if (charts) sections.push({ summary: `Charts: ${m.model}`, body: charts });
      sections.push({ summary: `Ledger: ${m.model}`, body: singleModelMarkdown(ledger, m) });
    }
  }
  const links = [opts.links.run && `[workflow run](${opts.links.run})`, opts.links.artifacts && `[artifacts (ledger.json, pruned models)](${opts.links.artifacts})`].filter(Boolean);
  const { runtime, tool } = ledger;
  sections.push(
    `<sub>${links.length ? `${links.join(' · ')} · ` : ''}${tool.name} ${tool.version} · onnxruntime ${runtime.onnxruntime} (${runtime.provider}, ${runtime.threads} threads, ${runtime.platform}) · ${ledger.created_at}</sub>`,
  );
  return sections;
}
