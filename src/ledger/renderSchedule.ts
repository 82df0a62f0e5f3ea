import { markdownCode } from '../util/escape.js';
import { ICON } from './budgetText.js';
import { bytes, percent } from './format.js';
import { DASH, shownPath, table, unbroken } from './markdown.js';
import type { ModelLedger, ScheduleLedger, ScheduleStep } from './types.js';

/**
 * The schedule's "budget ledger" rows, one per step with its verdict on every budget, then why the
 * schedule stopped and which step ships. Undefined for a one-shot run.
 */
export function scheduleSection(model: ModelLedger): string | undefined {
  const s: ScheduleLedger | undefined = model.schedule;
  if (!s) return undefined;
  const structured = s.steps.some((r) => r.channels_removed !== undefined);
  // one cell naming the budgets a step missed instead of a column per budget: the table stays narrow
  const missed = (r: ScheduleStep): string => {
    const bad = r.budgets.filter((b) => b.verdict !== 'pass');
    return bad.length ? bad.map((b) => `${ICON[b.verdict]} \`${unbroken(b.name)}\``).join(', ') : `${ICON.pass} all ${r.budgets.length}`;
  };
  const header = ['Step', 'Sparsity (target)', ...(structured ? ['Channels removed'] : []), 'Calib top-1', 'Top-1', 'p50 ms', 'Size', 'Budgets'];
  const rows = s.steps.map((r) => [
    `${r.index}${r.index === s.chosen ? ' (ships)' : ''}`,
    `${percent(r.sparsity)} (${percent(r.target)})`,
    ...(structured ? [r.channels_removed === undefined ? DASH : percent(r.channels_removed)] : []),
    r.calib_accuracy === null ? DASH : percent(r.calib_accuracy, 2),
    r.accuracy === null ? DASH : percent(r.accuracy, 2),
    r.p50_ms === null ? DASH : r.p50_ms.toFixed(2),
    bytes(r.size_bytes),
    missed(r),
  ]);
  const ran = s.steps.length;
  const stop = s.stopped_early
    ? `Stopped early after step ${s.stopped_early.after_step} of ${s.planned_steps} (${s.stopped_early.reason}): ${s.stopped_early.detail}.`
    : `Ran all ${ran} steps.`;
  const dense = s.dense_quality === null ? '' : `, dense ${percent(s.dense_quality, 2)}`;
  return [
    `**Schedule** <sub>(gradual, cubic, ${s.planned_steps} steps from ${percent(s.initial)} to ${percent(model.target_sparsity)}; cliff: ${s.cliff_metric === 'calib' ? 'calibration' : 'evaluation'} top-1 more than ${(s.cliff_threshold * 100).toFixed(2)} pt below dense${dense}, patience ${s.patience})</sub>`,
    table([header, ...rows]),
    stop,
    `Ships step ${s.chosen} (${markdownCode(s.steps.find((r) => r.index === s.chosen)?.step ?? '?')}): ${s.chosen_reason}. ` +
      `Rollback: the dense model ${markdownCode(shownPath(s.rollback))} is unchanged and stays the rollback artifact.`,
  ].join('\n\n');
}
