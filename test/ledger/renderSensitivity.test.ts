import { describe, expect, it } from 'vitest';
import { renderMarkdown } from '../../src/ledger/render.js';
import { CHART_LAYERS } from '../../src/ledger/renderSensitivity.js';
import type { SensitivityInfo, SensitivityLayer } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { sampleLedger, sampleModel } from './fixtures.js';

const RATIOS = [0, 0.25, 0.5, 0.75, 0.9];

function layer(name: string, steep: number, allocated: number): SensitivityLayer {
  return {
    name,
    node: `${name}_node`,
    size: 1000,
    points: RATIOS.map((r) => ({ ratio: r, calib_nll: 0.3 + steep * r * r, calib_accuracy: Math.max(0, 0.9 - steep * r * r * 0.3) })),
    allocated,
    seconds: 0.12,
  };
}

function sampleSensitivity(count = 3): SensitivityInfo {
  const layers = Array.from({ length: count }, (_, i) => layer(`layer${i}.weight`, (i + 1) * 0.4, 0.9 - i * 0.05));
  return {
    unit: 'weights',
    against: 'labels',
    calib_samples: 256,
    ratios: RATIOS,
    dense: { calib_nll: 0.3, calib_accuracy: 0.9 },
    cap: 0.95,
    predicted_increase: 0.12,
    seconds: 1.5,
    layers,
  };
}

/** The ```mermaid block's lines, checked against the xychart-beta grammar this renderer uses. */
function checkXyChart(markdown: string): { categories: number; lines: number[][]; min: number; max: number } {
  const block = /```mermaid\n([\s\S]*?)\n```/.exec(markdown);
  expect(block).not.toBeNull();
  const [init, ...lines] = block![1].split('\n').map((l) => l.trim());
  // the palette is set in the chart so each line has the colour its legend names
  expect(init).toMatch(/^%%\{init: \{"themeVariables":\{"xyChart":\{"plotColorPalette":"#[0-9a-f]{6}(, #[0-9a-f]{6})*"\}\}\}\}%%$/);
  expect(lines[0]).toBe('xychart-beta');
  expect(lines[1]).toMatch(/^title "[^"]+"$/);
  const x = /^x-axis "[^"]+" \[("[^"]*"(?:, "[^"]*")*)\]$/.exec(lines[2]);
  expect(x).not.toBeNull();
  const categories = x![1].split(', ').length;
  const y = /^y-axis "[^"]+" (\d+(?:\.\d+)?) --> (\d+(?:\.\d+)?)$/.exec(lines[3]);
  expect(y).not.toBeNull();
  const series = lines.slice(4).map((l) => {
    const m = /^line \[(-?\d+(?:\.\d+)?(?:, -?\d+(?:\.\d+)?)*)\]$/.exec(l);
    expect(m, l).not.toBeNull();
    return m![1].split(', ').map(Number);
  });
  expect(init.match(/#[0-9a-f]{6}/g)).toHaveLength(series.length);
  return { categories, lines: series, min: Number(y![1]), max: Number(y![2]) };
}

describe('sensitivity in the ledger', () => {
  it('validates against the ledger schema, and a malformed one does not', () => {
    const ledger = sampleLedger();
    ledger.models[0] = sampleModel({ sensitivity: sampleSensitivity() });
    expect(validateLedger(ledger)).toEqual([]);
    const broken = sampleLedger() as unknown as { models: Record<string, unknown>[] };
    broken.models[0] = { ...sampleModel(), sensitivity: { ...sampleSensitivity(), against: 'guess', layers: [{ name: 'x' }] } };
    const errors = validateLedger(broken);
    expect(errors.some((e) => e.startsWith('/models/0/sensitivity/against'))).toBe(true);
    expect(errors.some((e) => e.includes("/models/0/sensitivity/layers/0: must have required property 'points'"))).toBe(true);
  });

  it('renders a valid xychart with one line per layer and a table with every layer and its allocation', () => {
    const ledger = sampleLedger();
    ledger.models[0] = sampleModel({ sensitivity: sampleSensitivity() });
    const md = renderMarkdown(ledger);
    expect(md).toContain('**Sensitivity**');
    const chart = checkXyChart(md);
    expect(chart.categories).toBe(RATIOS.length);
    expect(chart.lines).toHaveLength(3);
    for (const l of chart.lines) {
      expect(l).toHaveLength(RATIOS.length);
      for (const v of l) expect(v >= chart.min && v <= chart.max).toBe(true);
    }
    // most sensitive (steepest) layer is line (1), drawn in the strongest colour and named in the legend
    expect(md).toContain('Lines: 🟥 (1) `layer2.weight` · 🟧 (2) `layer1.weight` · 🟪 (3) `layer0.weight`');
    expect(md).toContain('"plotColorPalette":"#d1242f, #bc4c00, #8250df"');
    // the axis spans the data instead of starting at zero
    expect(chart.min).toBeGreaterThan(50);
    expect(md).toContain('| Layer | Weights | Accuracy at 0 / 0.25 / 0.5 / 0.75 / 0.9 | NLL at 0 / 0.25 / 0.5 / 0.75 / 0.9 | Allocated | Seconds |');
    expect(md).toContain('| (3) `layer0.weight` | 1000 | 90.0% / 89.3% / 87.0% / 83.3% / 80.3% | 0.300 / 0.325 / 0.400 / 0.525 / 0.624 | **90.0%** | 0.12 |');
  });

  it('charts only the most sensitive few when there are many layers, and lists all in the table', () => {
    const ledger = sampleLedger();
    ledger.models[0] = sampleModel({ sensitivity: sampleSensitivity(12) });
    const md = renderMarkdown(ledger);
    expect(checkXyChart(md).lines).toHaveLength(CHART_LAYERS);
    for (let i = 0; i < 12; i++) expect(md).toContain(`\`layer${i}.weight\``);
    expect(md).toContain('The 5 most sensitive are drawn; all 12 are in the table.');
  });

  it('is absent for runs without sensitivity analysis', () => {
    expect(renderMarkdown(sampleLedger())).not.toContain('xychart-beta');
  });
});
