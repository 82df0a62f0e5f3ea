import { markdownTable } from 'markdown-table';
import { markdownCell } from '../util/escape.js';
import { percent } from './format.js';
import type { SensitivityInfo, SensitivityLayer } from './types.js';

/** Lines in the chart; more would be unreadable without a legend (xychart has none), so the table has them all. */
export const CHART_LAYERS = 5;

const cell = markdownCell;

/** Mermaid strings are double-quoted; a quote inside would end them. */
const quoted = (text: string): string => `"${text.replace(/"/g, "'")}"`;

/** How much the layer hurts at its largest measured ratio: accuracy lost, then NLL gained. */
function damage(l: SensitivityLayer): [number, number] {
  const first = l.points[0];
  const last = l.points[l.points.length - 1];
  return [first.calib_accuracy - last.calib_accuracy, last.calib_nll - first.calib_nll];
}

/** Most sensitive first. */
export function bySensitivity(layers: readonly SensitivityLayer[]): SensitivityLayer[] {
  return [...layers].sort((a, b) => {
    const [da, na] = damage(a);
    const [db, nb] = damage(b);
    return db - da || nb - na || a.name.localeCompare(b.name);
  });
}

/** Short label: the end of a long initializer or group name. */
function shortName(name: string, max = 28): string {
  return name.length <= max ? name : `…${name.slice(-(max - 1))}`;
}

/**
 * A Mermaid `xychart-beta` (GitHub renders it): x = pruned fraction of the layer alone, one line per layer
 * of calibration accuracy in percent, for the most sensitive few layers.
 */
export function sensitivityChart(s: SensitivityInfo): string {
  const shown = bySensitivity(s.layers).slice(0, CHART_LAYERS);
  const xs = shown[0]?.points.map((p) => p.ratio) ?? s.ratios;
  const values = shown.flatMap((l) => l.points.map((p) => p.calib_accuracy * 100));
  const low = Math.max(0, Math.floor(Math.min(100, ...values) / 10) * 10);
  const metric = s.against === 'labels' ? 'calib accuracy %' : 'agreement with dense %';
  return [
    '```mermaid',
    'xychart-beta',
    `    title ${quoted(`${metric} vs ${s.unit === 'weights' ? 'layer' : 'group'} pruned alone`)}`,
    `    x-axis ${quoted('fraction pruned')} [${xs.map((x) => quoted(String(x))).join(', ')}]`,
    `    y-axis ${quoted(metric)} ${low} --> 100`,
    ...shown.map((l) => `    line [${l.points.map((p) => (p.calib_accuracy * 100).toFixed(2)).join(', ')}]`),
    '```',
  ].join('\n');
}

/** The "Sensitivity" section of a model: chart of the most sensitive layers, then every number in a table. */
export function sensitivitySection(s: SensitivityInfo): string {
  const ordered = bySensitivity(s.layers);
  const shown = ordered.slice(0, CHART_LAYERS);
  const acc = s.against === 'labels' ? 'acc' : 'agree';
  const nll = s.against === 'labels' ? 'NLL' : 'KL';
  const head = [s.unit === 'weights' ? 'Layer' : 'Group', s.unit === 'weights' ? 'Weights' : 'Channels', ...s.ratios.map((r) => `${acc} / ${nll} @${r}`), 'Allocated', 'Seconds'];
  const rows = ordered.map((l) => {
    const line = shown.indexOf(l);
    return [
      `${line >= 0 ? `(${line + 1}) ` : ''}\`${shortName(l.name, 48)}\``,
      String(l.size),
      ...s.ratios.map((r) => {
        const p = l.points.find((q) => q.ratio === r);
        return p ? `${percent(p.calib_accuracy)} / ${p.calib_nll.toFixed(3)}` : '—';
      }),
      `**${percent(l.allocated)}**`,
      l.seconds.toFixed(2),
    ];
  });
  const against = s.against === 'labels' ? 'accuracy and NLL against the labels' : 'agreement with and KL from the dense model (the calibration set has no labels)';
  return [
    `**Sensitivity** <sub>(each ${s.unit === 'weights' ? 'layer' : 'channel group'} pruned alone, ${against}, on ${s.calib_samples} calibration samples; ` +
      `per-layer sparsity allocated to meet the target with the least predicted loss, capped at ${percent(s.cap, 0)}; ${s.seconds.toFixed(1)} s)</sub>`,
    `Lines, most sensitive first: ${shown.map((l, i) => `(${i + 1}) \`${cell(shortName(l.name))}\``).join(', ')}${ordered.length > shown.length ? `; all ${ordered.length} in the table` : ''}.`,
    sensitivityChart(s),
    markdownTable([head, ...rows].map((r) => r.map(cell)), { alignDelimiters: false }),
  ].join('\n\n');
}
