import { markdownCode } from '../util/escape.js';
import { percent } from './format.js';
import { table } from './markdown.js';
import { axisRange, lineChart, type Color } from './renderCharts.js';
import type { SensitivityInfo, SensitivityLayer } from './types.js';

/** Lines in the chart, one legend colour each; more would blur together, so the table has them all. */
export const CHART_LAYERS = 5;

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

/** Most sensitive first: red, then colours that stay distinct from it and from each other. */
const LINE_COLORS: readonly Color[] = ['red', 'orange', 'purple', 'blue', 'green'];

/**
 * A Mermaid `xychart-beta` (GitHub renders it): x = pruned fraction of the layer alone, one line per layer
 * of calibration accuracy in percent, for the most sensitive few layers, each named in the legend.
 */
export function sensitivityChart(s: SensitivityInfo): string {
  const shown = bySensitivity(s.layers).slice(0, CHART_LAYERS);
  const xs = shown[0]?.points.map((p) => p.ratio) ?? s.ratios;
  const metric = s.against === 'labels' ? 'calib accuracy %' : 'agreement with dense %';
  const values = shown.flatMap((l) => l.points.map((p) => p.calib_accuracy * 100));
  const [lo, hi] = axisRange(values);
  return lineChart({
    range: [Math.max(0, lo), Math.min(100, hi)],
    title: `${metric} vs ${s.unit === 'weights' ? 'layer' : 'group'} pruned alone`,
    xLabel: 'fraction pruned',
    categories: xs.map(String),
    yLabel: metric,
    series: shown.map((l, i) => ({
      label: `(${i + 1}) ${markdownCode(shortName(l.name))}`,
      color: LINE_COLORS[i],
      values: l.points.map((p) => Number((p.calib_accuracy * 100).toFixed(2))),
    })),
  });
}

/** The "Sensitivity" section of a model: chart of the most sensitive layers, then every number in a table. */
export function sensitivitySection(s: SensitivityInfo): string {
  const ordered = bySensitivity(s.layers);
  const shown = ordered.slice(0, CHART_LAYERS);
  const acc = s.against === 'labels' ? 'Accuracy' : 'Agreement';
  const nll = s.against === 'labels' ? 'NLL' : 'KL';
  const at = s.ratios.join(' / ');
  const head = [s.unit === 'weights' ? 'Layer' : 'Group', s.unit === 'weights' ? 'Weights' : 'Channels', `${acc} at ${at}`, `${nll} at ${at}`, 'Allocated', 'Seconds'];
  const rows = ordered.map((l) => {
    const line = shown.indexOf(l);
    const at = (show: (p: SensitivityLayer['points'][number]) => string) =>
      s.ratios
        .map((r) => {
          const p = l.points.find((q) => q.ratio === r);
          return p ? show(p) : '—';
        })
        .join(' / ');
    return [
      `${line >= 0 ? `(${line + 1}) ` : ''}${markdownCode(shortName(l.name, 48))}`,
      String(l.size),
      at((p) => percent(p.calib_accuracy)),
      at((p) => p.calib_nll.toFixed(3)),
      `**${percent(l.allocated)}**`,
      l.seconds.toFixed(2),
    ];
  });
  const against = s.against === 'labels' ? 'accuracy and NLL against the labels' : 'agreement with and KL from the dense model (the calibration set has no labels)';
  return [
    `**Sensitivity** <sub>(each ${s.unit === 'weights' ? 'layer' : 'channel group'} pruned alone, ${against}, on ${s.calib_samples} calibration samples; ` +
      `per-layer sparsity allocated to meet the target with the least predicted loss, capped at ${percent(s.cap, 0)}; ${s.seconds.toFixed(1)} s)</sub>`,
    sensitivityChart(s) + (ordered.length > shown.length ? `\n\nThe ${shown.length} most sensitive are drawn; all ${ordered.length} are in the table.` : ''),
    table([head, ...rows]),
  ].join('\n\n');
}
