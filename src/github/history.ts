import { markdownTable } from 'markdown-table';
import { bytes, ms, percent } from '../ledger/format.js';
import { axisRange, quoted } from '../ledger/renderCharts.js';
import type { Ledger, Verdict } from '../ledger/types.js';

export const HISTORY_SCHEMA = 'prune-guard/history@1' as const;
/** Entries kept; a year of nightly runs. */
export const HISTORY_LIMIT = 400;

export interface HistoryModel {
  model: string;
  verdict: Verdict;
  sparsity: number;
  accuracy: number | null;
  dense_accuracy: number | null;
  p50_ms: number | null;
  size_bytes: number;
  /** names of failed budgets */
  failed: string[];
}

export interface HistoryEntry {
  created_at: string;
  sha: string;
  run_id: number;
  verdict: Verdict;
  models: HistoryModel[];
}

export interface History {
  schema: typeof HISTORY_SCHEMA;
  entries: HistoryEntry[];
}

export function emptyHistory(): History {
  return { schema: HISTORY_SCHEMA, entries: [] };
}

/** Parses a history file; anything else is refused rather than overwritten. */
export function parseHistory(text: string, where: string): History {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error(`${where}: is not JSON`);
  }
  const h = data as History;
  if (h?.schema !== HISTORY_SCHEMA || !Array.isArray(h.entries)) throw new Error(`${where}: is not a prune-guard history file (schema ${HISTORY_SCHEMA})`);
  return h;
}

/** One entry per run: the headline numbers of each model's shipped step. */
export function historyEntry(ledger: Ledger, sha: string, runId: number): HistoryEntry {
  return {
    created_at: ledger.created_at,
    sha,
    run_id: runId,
    verdict: ledger.verdict,
    models: ledger.models.map((m) => {
      const f = m.steps[m.steps.length - 1];
      return {
        model: m.model,
        verdict: m.verdict,
        sparsity: f.sparsity,
        accuracy: f.accuracy,
        dense_accuracy: m.steps[0].accuracy,
        p50_ms: f.latency?.p50_ms ?? null,
        size_bytes: f.size_bytes,
        failed: m.budgets.filter((b) => b.verdict === 'fail').map((b) => b.name),
      };
    }),
  };
}

export function appendHistory(history: History, entry: HistoryEntry): History {
  return { schema: HISTORY_SCHEMA, entries: [...history.entries, entry].slice(-HISTORY_LIMIT) };
}

/**
 * A Mermaid line chart of one metric over the recent runs (GitHub renders `xychart-beta`), its axis
 * spanning the values so a drift of a point or two shows; points without a value are left out.
 */
export function trendChart(title: string, yLabel: string, points: [string, number | null | undefined][], minSpan = 0.5): string | undefined {
  const known = points.filter((b): b is [string, number] => b[1] != null && Number.isFinite(b[1]));
  if (known.length === 0) return undefined;
  const values = known.map((b) => Number(b[1].toFixed(3)));
  const range = axisRange(values, minSpan);
  // accuracy, latency and sparsity are never negative
  const [lo, hi] = [Math.max(0, range[0]), range[1]];
  return [
    '```mermaid',
    'xychart-beta',
    `  title ${quoted(title)}`,
    `  x-axis [${known.map((b) => quoted(b[0])).join(', ')}]`,
    `  y-axis ${quoted(yLabel)} ${lo} --> ${hi}`,
    `  line [${values.join(', ')}]`,
    '```',
  ].join('\n');
}

const TREND_ROWS = 10;
const CHART_POINTS = 30;

/** Per model: a table of the latest runs and line charts of accuracy and latency over the recent ones. */
export function renderTrend(history: History): string {
  const names = [...new Set(history.entries.flatMap((e) => e.models.map((m) => m.model)))].sort();
  if (names.length === 0) return '';
  const parts = ['### prune-guard trend'];
  for (const name of names) {
    const rows = history.entries.flatMap((e) => e.models.filter((m) => m.model === name).map((m) => ({ e, m })));
    const recent = rows.slice(-TREND_ROWS).reverse();
    parts.push(`**${name}**`);
    parts.push(
      markdownTable(
        [
          ['Date', 'Commit', 'Verdict', 'Sparsity', 'Accuracy', 'p50', 'Size', 'Failed budgets'],
          ...recent.map(({ e, m }) => [
            e.created_at.slice(0, 10),
            e.sha.slice(0, 7),
            m.verdict,
            percent(m.sparsity),
            m.accuracy == null ? '—' : percent(m.accuracy, 2),
            m.p50_ms == null ? '—' : ms(m.p50_ms),
            bytes(m.size_bytes),
            m.failed.join(', ') || '—',
          ]),
        ],
        { alignDelimiters: false },
      ),
    );
    const chartRows = rows.slice(-CHART_POINTS);
    const labels = chartRows.map(({ e }, i) => `${e.created_at.slice(5, 10)}#${i + 1}`);
    const charts = [
      trendChart(`${name}: accuracy over time`, 'accuracy %', chartRows.map(({ m }, i) => [labels[i], m.accuracy == null ? null : m.accuracy * 100])),
      // latency drifts relative to its size: a tenth of it is the smallest span worth drawing
      trendChart(`${name}: p50 latency over time`, 'ms', chartRows.map(({ m }, i) => [labels[i], m.p50_ms]), Math.max(...chartRows.map(({ m }) => m.p50_ms ?? 0)) * 0.1 || 0.5),
      trendChart(`${name}: sparsity over time`, 'sparsity %', chartRows.map(({ m }, i) => [labels[i], m.sparsity * 100])),
    ];
    parts.push(...charts.filter((c): c is string => !!c));
  }
  return parts.join('\n\n') + '\n';
}
