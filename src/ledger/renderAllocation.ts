import { markdownTable } from 'markdown-table';
import { markdownCell } from '../util/escape.js';
import { ratio } from './format.js';
import type { AllocationRecord } from './types.js';
import { spreadLabel } from '../prune/structured/record.js';

const table = (rows: string[][]): string => markdownTable(rows.map((r) => r.map(markdownCell)), { alignDelimiters: false });
const ms = (x: number | null | undefined): string => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(3) : '—');

/**
 * The structured allocation behind the kept channel counts, folded: the widths read from the probes
 * (one row per layer kind and axis, every batch's multiple) and a latency target's attempts.
 */
export function allocationSection(a: AllocationRecord): string | undefined {
  const parts: string[] = [];
  if (a.rounding === 'fixed') parts.push(`Kept channel counts are multiples of ${a.round_to} (\`round-to\`).`);
  if (a.probes?.length) {
    const rows = new Map<string, string[]>();
    for (const p of a.probes) {
      const key = `${p.kind}\u0000${p.axis}`;
      rows.set(key, [...(rows.get(key) ?? []), `b=${p.batch}: ${p.multiple}${p.cached ? '' : ' (timed now)'}`]);
    }
    parts.push(
      `Channel widths measured on ${a.machine ?? 'this machine'} (onnxruntime ${a.onnxruntime ?? '?'}, ${a.threads || 'all'} threads): the multiple each layer kind runs fast at, read from its latency over ${a.probes[0].curve.counts.length} channel counts; every group keeps a multiple of the largest its layers ask for (or a halving of it).`,
      table([['Layer kind', 'Channels', 'Multiple'], ...[...rows].map(([k, v]) => [k.split('\u0000')[0], k.split('\u0000')[1], v.join(', ')])]),
    );
  } else if (a.rounding === 'recorded') parts.push('Kept channel counts were snapped to recorded widths.');
  const c = a.width_check;
  if (c) {
    const timed = c.batches.map((b, i) => `${ratio(c.speedup[i])} at batch ${b}`).join(', ');
    const as = c.timed_as === 'int8' ? 'Timed as whole models quantized to INT8 (as they ship)' : 'Timed as whole models';
    const rule = `${c.whole_blocks ? 'whole multiples' : 'multiples'} of ${c.coarse_multiple}${c.whole_blocks ? ' (no halvings below)' : ''}`;
    parts.push(
      c.chosen === 'coarse'
        ? `${as}, every group on ${rule} ran faster than the probes' widths (${timed}${c.cached ? ', cached' : ''}), so those ship.`
        : `${as}, every group on ${rule} ran no faster than the probes' widths (${timed}${c.cached ? ', cached' : ''}), so the probes' widths ship.`,
    );
  }
  const t = a.target;
  if (t) {
    parts.push(
      `Latency target ${t.kind === 'speedup' ? ratio(t.value) : `${t.value} ms`} at batch ${t.batch} (dense ${ms(t.dense_ms)} ms, so ${ratio(t.speedup_needed)}): ${t.outcome === 'met' ? 'met' : `not met (${t.outcome})`}, ${t.detail}.` +
        (t.timings_cached ? ` ${t.timings_cached} of its timings were read from the measurement cache (the same files, timed earlier on this machine).` : ''),
      table([
        ['Attempt', 'Budget ms', 'Predicted ms', 'p50 ms', 'Speedup', 'MACs'],
        ...t.attempts.map((x, i) => [`${i + 1}${i === t.shipped ? ' (ships)' : ''}`, ms(x.budget_ms), ms(x.predicted_ms), ms(x.p50_ms), ratio(x.speedup), String(x.macs)]),
      ]),
    );
    if (t.candidates && t.chosen !== undefined) {
      const c = t.candidates;
      parts.push(
        `How the cut is spread (evenness 0: where the loss curves put it, 1: about the same fraction from every group; uniform: the same fraction from every group, as \`--scope layer\` cuts): the correction loop runs on the uniform cut; once it met the target, every other spread was pruned at the same budget and timed against dense, and those at or above the target were scored on half the calibration set after reconstruction on the other half. One replaces the uniform cut only with a better score, and then gets a correction loop of its own (the attempts above).`,
        table([
          ['Spread', 'Most any group lost', 'Predicted ms', 'MACs', 'Speedup', 'Calib accuracy', 'Calib NLL'],
          ...c.map((x, i) => [
            `${spreadLabel(x)}${i === t.chosen ? ' (chosen)' : ''}`,
            `${(x.max_group_ratio * 100).toFixed(1)}%`,
            ms(x.predicted_ms),
            String(x.macs),
            x.speedup === undefined ? '—' : ratio(x.speedup),
            x.calib_accuracy === null ? 'not scored: short of the target' : `${(x.calib_accuracy * 100).toFixed(2)}%`,
            x.calib_nll === null ? '—' : x.calib_nll.toFixed(4),
          ]),
        ]),
      );
    }
  }
  if (parts.length === 0) return undefined;
  return `<details><summary>Channel allocation${t ? ' and latency target' : ''}</summary>\n\n${parts.join('\n\n')}\n\n</details>`;
}
