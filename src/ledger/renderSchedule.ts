import { markdownTable } from 'markdown-table';
import { markdownCell } from '../util/escape.js';
import { bytes, percent } from './format.js';
import type { ModelLedger, ScheduleLedger, Verdict } from './types.js';

const ICON: Record<Verdict, string> = { pass: '✅', warn: '⚠️', fail: '❌' };
const DASH = '—';

const cell = markdownCell;

/**
 * The schedule's "budget ledger" rows, one per step with its verdict on every budget, then why the
 * schedule stopped and which step ships. Undefined for a one-shot run.
 */
export function scheduleSection(model: ModelLedger): string | undefined {
  const s: ScheduleLedger | undefined = model.schedule;
  if (!s) return undefined;
  const names = s.steps[0]?.budgets.map((b) => b.name) ?? [];
  const structured = s.steps.some((r) => r.channels_removed !== undefined);
  const header = ['Step', 'Target', 'Sparsity', ...(structured ? ['Channels removed'] : []), 'Calib top-1', 'Top-1', 'p50 ms', 'Size', ...names.map((n) => `\`${n}\``), 'Verdict'];
  const rows = s.steps.map((r) => [
    `${r.index}${r.index === s.chosen ? ' (ships)' : ''}`,
    percent(r.target),
    percent(r.sparsity),
    ...(structured ? [r.channels_removed === undefined ? DASH : percent(r.channels_removed)] : []),
    r.calib_accuracy === null ? DASH : percent(r.calib_accuracy, 2),
    r.accuracy === null ? DASH : percent(r.accuracy, 2),
    r.p50_ms === null ? DASH : r.p50_ms.toFixed(2),
    bytes(r.size_bytes),
    ...names.map((n) => {
      const b = r.budgets.find((x) => x.name === n);
      return b ? ICON[b.verdict] : DASH;
    }),
    `${ICON[r.verdict]} ${r.verdict}`,
  ]);
  const ran = s.steps.length;
  const stop = s.stopped_early
    ? `Stopped early after step ${s.stopped_early.after_step} of ${s.planned_steps} (${s.stopped_early.reason}): ${s.stopped_early.detail}.`
    : `Ran all ${ran} steps.`;
  const dense = s.dense_quality === null ? '' : `, dense ${percent(s.dense_quality, 2)}`;
  return [
    `**Schedule** <sub>(gradual, cubic, ${s.planned_steps} steps from ${percent(s.initial)} to ${percent(model.target_sparsity)}; cliff: ${s.cliff_metric === 'calib' ? 'calibration' : 'evaluation'} top-1 more than ${(s.cliff_threshold * 100).toFixed(2)} pt below dense${dense}, patience ${s.patience})</sub>`,
    markdownTable([header, ...rows].map((row) => row.map(cell)), { alignDelimiters: false }),
    stop,
    `Ships step ${s.chosen} (\`${cell(s.steps.find((r) => r.index === s.chosen)?.step ?? '?')}\`): ${s.chosen_reason}. ` +
      `Rollback: the dense model \`${s.rollback}\` is unchanged and stays the rollback artifact.`,
  ].join('\n\n');
}
