import { limitText } from './budgetText.js';
import type { ModelLedger } from './types.js';

/**
 * Mermaid `xychart-beta` line charts (GitHub renders them) that carry what a table cannot show at a
 * glance: a trajectory against a limit. The y axis spans the data, not zero to the maximum, and every
 * line has a named colour in a legend above the chart (xychart draws none of its own).
 */

/** GitHub's own palette, with the emoji square that names each colour in the legend. */
export const COLORS = {
  red: { hex: '#d1242f', square: '🟥' },
  orange: { hex: '#bc4c00', square: '🟧' },
  purple: { hex: '#8250df', square: '🟪' },
  blue: { hex: '#0969da', square: '🟦' },
  green: { hex: '#1a7f37', square: '🟩' },
} as const;

export type Color = keyof typeof COLORS;

export interface Series {
  /** markdown shown in the legend */
  label: string;
  color: Color;
  values: number[];
}

/** Mermaid strings are double-quoted; a quote inside would end them. */
export const quoted = (text: string): string => `"${text.replace(/"/g, "'")}"`;

/**
 * A round axis range around the values with a little room, so small differences stay visible; a span
 * below `minSpan` is widened to it, so noise does not fill the whole chart.
 */
export function axisRange(values: readonly number[], minSpan = 0.5): [number, number] {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = Math.max(hi - lo, minSpan);
  // round to a tenth of the span's decade: 0.1 for spans from 0.5 to 5, 1 up to 50, 0.01 below 0.5
  const step = 10 ** Math.floor(Math.log10(span / 5) + 1e-9);
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const pad = span * 0.15;
  const down = (x: number) => Number((Math.floor(x / step) * step).toFixed(digits));
  const up = (x: number) => Number((Math.ceil(x / step) * step).toFixed(digits));
  return [down(lo - pad), up(hi + pad)];
}

/** A legend line and the chart; the colours are set in the chart so they match the legend. */
export function lineChart(opts: { title: string; xLabel?: string; categories: readonly string[]; yLabel: string; series: readonly Series[]; range?: [number, number] }): string {
  const [lo, hi] = opts.range ?? axisRange(opts.series.flatMap((s) => s.values));
  const palette = opts.series.map((s) => COLORS[s.color].hex).join(', ');
  const init = { themeVariables: { xyChart: { plotColorPalette: palette } } };
  return [
    `Lines: ${opts.series.map((s) => `${COLORS[s.color].square} ${s.label}`).join(' · ')}`,
    [
      '```mermaid',
      `%%{init: ${JSON.stringify(init)}}%%`,
      'xychart-beta',
      `    title ${quoted(opts.title)}`,
      `    x-axis ${opts.xLabel ? `${quoted(opts.xLabel)} ` : ''}[${opts.categories.map(quoted).join(', ')}]`,
      `    y-axis ${quoted(opts.yLabel)} ${lo} --> ${hi}`,
      ...opts.series.map((s) => `    line [${s.values.join(', ')}]`),
      '```',
    ].join('\n'),
  ].join('\n\n');
}

/** Accuracy in percent with the step table's two decimals, so the chart shows the table's numbers. */
const asInTable = (x: number): number => Math.round(x * 10_000) / 100;
const change = (x: number, from: number): number => Number((asInTable(x) - asInTable(from)).toFixed(2));

/**
 * Accuracy change against the dense model at every step (prune, each recovery stage), against the
 * `accuracy-drop` limit, and the base run's trajectory when the pull request's base went through the
 * same steps. Undefined with fewer than three measured steps: a single drop is the table's number.
 */
export function accuracyChart(model: ModelLedger): string | undefined {
  if (model.method === 'compare') return undefined;
  const steps = model.steps;
  if (steps.length < 3 || steps.some((s) => s.accuracy == null)) return undefined;
  const dense = steps[0].accuracy!;
  const series: Series[] = [{ label: 'this model, change at each step', color: 'blue', values: steps.map((s) => change(s.accuracy!, dense)) }];
  const base = model.vs_base?.steps;
  if (base && base.length === steps.length && base.every((s, i) => s.name === steps[i].name && s.accuracy != null)) {
    series.push({ label: 'the base model, same steps', color: 'orange', values: base.map((s) => change(s.accuracy!, base[0].accuracy!)) });
  }
  const budget = model.budgets.find((b) => b.name === 'accuracy-drop');
  if (budget) {
    const at = -Number((budget.limit * 100).toFixed(2));
    series.push({ label: `\`accuracy-drop\` limit (${limitText(budget)})`, color: 'red', values: steps.map(() => at) });
  }
  return lineChart({ title: 'Accuracy change vs dense (pt)', categories: steps.map((s) => s.name), yLabel: 'pt', series });
}
