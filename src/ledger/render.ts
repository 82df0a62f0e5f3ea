import { allocationSection } from './renderAllocation.js';
import { escapeMarkdown, htmlText, markdownCell, markdownCode } from '../util/escape.js';
import { timedOutRuns } from './envelope.js';
import { sensitivitySection } from './renderSensitivity.js';
import { bytes, count, latency, ms, percent, points, pValue, ratio } from './format.js';
import { ICON, intervalText, limitText, marginText, valueText, WORD, whyText } from './budgetText.js';
import { DASH, details, nowrap, shownPath, table, unbroken, withoutAbsolutePaths, type Fold } from './markdown.js';
import { accuracyChart } from './renderCharts.js';
import { judged, renderReview, type Via } from './renderReview.js';
import { quantizeSection } from './renderQuantize.js';
import { scheduleSection } from './renderSchedule.js';
import { denseStep, finalStep, summaryParts } from './renderSummary.js';
import type { Ledger, ModelLedger, Step } from './types.js';

export { renderHeadline } from './renderSummary.js';

const TOP_CLASSES = 5;

/** Every budget of a model, passing ones too, dense → pruned and base → head in one table. */
function budgetTable(model: ModelLedger): string {
  const all = judged(model);
  if (all.length === 0) return '_No budgets checked._';
  return table([
    ['Budget', 'Limit', 'Measured', 'Margin', 'Verdict', 'Why'],
    ...all.map(({ budget: b, compared }) => {
      const interval = intervalText(b);
      const value = valueText(b);
      return [
        `\`${unbroken(b.name)}\`<br><sub>${compared}</sub>`,
        nowrap(limitText(b)),
        value === null ? DASH : nowrap(value) + (interval ? `<br><sub>${nowrap(interval)}</sub>` : ''),
        nowrap(marginText(b) ?? DASH),
        `${ICON[b.verdict]} ${b.verdict}`,
        whyText(b, { interval: false }),
      ];
    }),
  ]);
}

const orDash = (x: number | null | undefined, show: (x: number) => string): string => (x == null ? DASH : show(x));

/** Structured pruning removes weights; the column says so instead of a sparsity nobody can find in the file. */
const sparsityHeader = (method: string): string => (method === 'structured' ? 'Weights removed' : method === 'hybrid' ? 'Removed or zero' : 'Sparsity');

/** Two narrow tables instead of one wide one: what each step costs in size, and what it does to quality and speed. */
function stepTables(model: ModelLedger): string {
  const steps = model.steps;
  const batch = steps.find((s) => s.latency)?.latency?.batch;
  const at = batch === undefined ? '' : ` (b=${batch})`;
  const timed = (s: Step, key: 'p50_ms' | 'p95_ms'): string => {
    if (!s.latency) return DASH;
    const value = latency(s.latency[key]);
    return s.latency.batch === batch ? value : `${value} (b=${s.latency.batch})`;
  };
  const quality = table([
    ['Step', 'Accuracy', 'ECE', 'Agreement', `p50 ms${at}`, `p95 ms${at}`],
    ...steps.map((s) => [
      s.name,
      orDash(s.accuracy, (x) => percent(x, 2)),
      orDash(s.ece, (x) => percent(x, 2)),
      orDash(s.agreement, (x) => percent(x, 2)),
      timed(s, 'p50_ms'),
      timed(s, 'p95_ms'),
    ]),
  ]);
  const size = table([
    ['Step', sparsityHeader(model.method), 'Params', 'Nonzero', 'MACs', 'Size', 'Gzip'],
    ...steps.map((s) => [s.name, percent(s.sparsity), count(s.params), count(s.nonzero_params), count(s.flops), bytes(s.size_bytes), bytes(s.gzip_bytes)]),
  ]);
  return `**Steps**\n\n${quality}\n\n${size}`;
}

/** Methods whose zeros onnxruntime's CPU kernels still multiply: their gain is size, not speed. */
const zerosNotSkipped = (method: string): boolean => method === 'unstructured' || /^\d+:\d+$/.test(method);

/** "Where the speed went": parameters -> MACs -> ideal speedup -> measured speedup -> efficiency. */
function funnelSection(model: ModelLedger): string | undefined {
  const steps = model.steps.filter((s) => s.funnel);
  if (steps.length === 0) return undefined;
  const dense = denseStep(model);
  const batch = steps[0].funnel!.batch;
  const speedCell = (s: Step): string => {
    const f = s.funnel!;
    if (s === dense) return 'baseline';
    if (f.speedup === null) return DASH;
    const verdict = f.speed === 'unchanged' ? 'within noise' : f.speed ?? '';
    return `${ratio(f.speedup)} (${verdict}${f.p_value === null ? '' : `, ${pValue(f.p_value)}`})`;
  };
  const lines = [
    `**Where the speed went** <sub>(b=${batch}, every ratio against the dense model; ideal = dense MACs / MACs on nonzero weights; p50 and p95 in the step table)</sub>`,
    table([
      ['Step', 'Nonzero params', 'MACs run', 'MACs on nonzero weights', 'Weight bytes', 'Ideal speedup', 'Measured speedup (p50)', 'Efficiency'],
      ...steps.map((s) => {
        const f = s.funnel!;
        return [
          s.name,
          percent(f.params_ratio),
          percent(f.flops_ratio),
          percent(f.sparse_flops_ratio),
          orDash(f.bytes_ratio, (x) => percent(x)),
          ratio(f.ideal_speedup),
          speedCell(s),
          s === dense ? DASH : orDash(f.efficiency, (x) => percent(x, 0)),
        ];
      }),
    ]),
  ];
  const final = finalStep(model);
  if (final?.funnel && zerosNotSkipped(model.method) && !final.quantize) {
    const f = final.funnel;
    const measured = f.speedup === null ? '' : ` (measured ${ratio(f.speedup)}${f.speed === 'unchanged' ? ', within noise' : ''})`;
    lines.push(
      `onnxruntime on CPU does not exploit ${model.method === 'unstructured' ? 'unstructured' : `${model.method} (N:M)`} sparsity: its dense kernels ` +
        `multiply the zeros like any other weight, so the ideal ${ratio(f.ideal_speedup)} is not reached here${measured}. ` +
        `The gain is in size and memory:`,
      table([
        ['Step', 'File', 'Gzip', 'Sparse encoding (bitmask + nonzero values)'],
        ...model.steps.map((s) => [s.name, bytes(s.size_bytes), bytes(s.gzip_bytes), orDash(s.sparse_bytes, bytes)]),
      ]),
    );
  }
  return lines.join('\n\n');
}

function classTable(model: ModelLedger): string | undefined {
  const lost = model.class_changes
    .filter((c) => c.drop > 0)
    .sort((a, b) => b.drop - a.drop)
    .slice(0, TOP_CLASSES);
  if (lost.length === 0) return undefined;
  const [ref, cand] = model.method === 'compare' ? ['Base', 'Head'] : ['Dense', 'Pruned'];
  return [
    '**Classes that lost most**',
    table([
      ['Class', ref, cand, 'Drop', 'Support'],
      ...lost.map((c) => [
        String(c.class),
        percent(c.dense),
        percent(c.pruned),
        points(c.drop, 1) + (c.drop_ci ? ` [${points(c.drop_ci[0], 1)}, ${points(c.drop_ci[1], 1)}]` : '') + (c.beyond_budget ? ' ❌' : ''),
        String(c.support),
      ]),
    ]),
  ].join('\n\n');
}

function costTable(steps: readonly Step[]): string | undefined {
  const rows = steps.filter((s) => s.runtime_cost);
  if (rows.length === 0) return undefined;
  const withCi = (s: Step) => (s.latency?.p50_ci ? `${s.latency.p50_ms.toFixed(3)} [${s.latency.p50_ci[0].toFixed(3)}, ${s.latency.p50_ci[1].toFixed(3)}]` : DASH);
  return [
    '**Runtime cost**',
    table([
      ['Step', 'p50 ms [interval]', 'p99 ms', 'Load ms', 'Throughput', 'Peak RSS (model adds)', 'Energy / sample'],
      ...rows.map((s) => {
        const c = s.runtime_cost!;
        return [
          s.name,
          withCi(s),
          orDash(s.latency?.p99_ms, (x) => x.toFixed(3)),
          c.load_ms.toFixed(1),
          c.throughput_samples_per_s === undefined ? DASH : `${Math.round(c.throughput_samples_per_s)}/s (b=${c.throughput_batch})`,
          c.peak_rss_bytes == null ? 'not available' : `${bytes(c.peak_rss_bytes)} (+${bytes(c.session_rss_bytes ?? 0)})`,
          c.energy_j_per_sample === null ? 'not available' : `${(c.energy_j_per_sample * 1000).toFixed(3)} mJ`,
        ];
      }),
    ]),
  ].join('\n\n');
}

function predictionShiftTable(model: ModelLedger): string | undefined {
  if (!model.prediction_shift?.length) return undefined;
  const p = (x: number) => pValue(x);
  const [ref, cand] = model.method === 'compare' ? ['base', 'head'] : ['dense', 'pruned'];
  return [
    '**Prediction shift vs clean data** (KS on confidence, PSI, chi-square on predicted classes)',
    table([
      ['Set', 'Labels', 'Model', 'KS (p)', 'PSI', 'χ² (df, p)'],
      ...model.prediction_shift.flatMap((s) =>
        ([[ref, s.dense], [cand, s.final]] as const).map(([who, d]) => [escapeMarkdown(s.name), s.labelled ? 'yes' : 'no', who, `${d.ks.toFixed(3)} (${p(d.ks_p)})`, d.psi.toFixed(3), `${d.chi2.toFixed(1)} (${d.chi2_df}, ${p(d.chi2_p)})`]),
      ),
    ]),
  ].join('\n\n');
}

function shiftTable(model: ModelLedger): string | undefined {
  if (!model.shifts?.length) return undefined;
  const [ref, cand] = model.method === 'compare' ? ['Base', 'Head'] : ['Dense', 'Pruned'];
  return [
    '**Distribution shift**',
    table([
      ['Set', 'Source', 'Samples', ref, cand, 'Drop', 'Gap change vs clean'],
      ...model.shifts.map((s) => [
        escapeMarkdown(s.name),
        escapeMarkdown(s.source),
        String(s.samples),
        percent(s.dense, 2),
        percent(s.final, 2),
        points(s.drop, 2) + (s.drop_ci ? ` [${points(s.drop_ci[0], 2)}, ${points(s.drop_ci[1], 2)}]` : ''),
        points(s.gap_change, 2),
      ]),
    ]),
  ].join('\n\n');
}

const signedChange = (a: number | null | undefined, b: number | null | undefined, show: (x: number) => string): string => {
  if (a == null || b == null) return DASH;
  const text = show(Math.abs(b - a));
  // a change that rounds to zero is shown as one, whatever its sign
  if (!/[1-9]/.test(text)) return `±${text}`;
  return b > a ? `+${text}` : `−${text}`;
};

/**
 * Base's and head's shipped models side by side. Sparsity is each run's own (against its own dense
 * model: a structured model has no zeros left to count once the pair is measured again); everything
 * else is from the pair measured together, the numbers the base → head budgets judged.
 */
function baseSection(model: ModelLedger): string | undefined {
  const vs = model.vs_base;
  if (!vs) return undefined;
  const [base, head] = vs.pair ?? [vs.steps[vs.steps.length - 1], model.steps[model.steps.length - 1]];
  const baseRun = vs.steps.at(-1);
  const headRun = finalStep(model);
  const p50 = (s: Step) => s.latency?.p50_ms;
  const rows: string[][] = [
    ['', 'Base', 'Head', 'Change'],
    [sparsityHeader(model.method), orDash(baseRun?.sparsity, percent), orDash(headRun?.sparsity, percent), signedChange(baseRun?.sparsity, headRun?.sparsity, (x) => points(x, 1))],
    ['Parameters', count(base.params), count(head.params), signedChange(base.params, head.params, count)],
    ['Accuracy', orDash(base.accuracy, (x) => percent(x, 2)), orDash(head.accuracy, (x) => percent(x, 2)), signedChange(base.accuracy, head.accuracy, (x) => points(x, 2))],
    ['ECE', orDash(base.ece, (x) => percent(x, 2)), orDash(head.ece, (x) => percent(x, 2)), signedChange(base.ece, head.ece, (x) => points(x, 2))],
    [`p50 latency${head.latency ? ` (b=${head.latency.batch})` : ''}`, orDash(p50(base), ms), orDash(p50(head), ms), signedChange(p50(base), p50(head), ms)],
    ['Size', bytes(base.size_bytes), bytes(head.size_bytes), signedChange(base.size_bytes, head.size_bytes, bytes)],
  ];
  return [
    `**Against base**: ${markdownCode(shownPath(vs.model))} at ${vs.ref.slice(0, 12)} (merge base), pruned the same way; both shipped models measured again together (same data, latency interleaved).`,
    table(rows),
  ].join('\n\n');
}

/** Everything about one model, for its fold: budgets, base, steps, speed, classes, cost, shift, sensitivity. */
export function renderModel(model: ModelLedger): string {
  const about =
    `<sub>${markdownCode(shownPath(model.model))} → ${markdownCode(shownPath(model.pruned))} · ${model.method === 'compare' ? 'compare' : `${model.method} to ${percent(model.target_sparsity)} target`} · ` +
    `eval on ${markdownCode(shownPath(model.eval.data))}: ${model.eval.samples} samples, ${model.eval.classes} classes</sub>`;
  const sections = [about, `**Budgets**\n\n${budgetTable(model)}`];
  const optional = [
    baseSection(model),
    accuracyChart(model),
    model.steps.length > 0 ? stepTables(model) : undefined,
    scheduleSection(model),
    funnelSection(model),
    model.allocation && allocationSection(model.allocation),
    quantizeSection(model),
    classTable(model),
    model.notes?.length ? ['**Notes**', ...model.notes.map((n) => `- ${markdownCell(withoutAbsolutePaths(n))}`)].join('\n') : undefined,
    costTable(model.steps),
    shiftTable(model),
    predictionShiftTable(model),
    model.sensitivity ? sensitivitySection(model.sensitivity) : undefined,
  ];
  for (const s of optional) if (s) sections.push(s);
  return sections.join('\n\n');
}

/** A model's fold: its verdict and one-line summary outside, its whole ledger inside. */
export function modelFold(model: ModelLedger): Fold {
  const summary = `${ICON[model.verdict]} <code>${htmlText(shownPath(model.model))}</code> · ${htmlText(summaryParts(model))} — full ledger`;
  return { summary, body: renderModel(model) };
}

/** `<sub>prune-guard 0.1.0 · onnxruntime 1.30.0 (cpu, 2 threads, linux-x64) · 2025-…</sub>` and runtime notes. */
export function renderFooter(ledger: Ledger, links: readonly string[] = []): string {
  const { runtime, tool } = ledger;
  return (
    `<sub>${links.length ? `${links.join(' · ')} · ` : ''}${tool.name} ${tool.version} · onnxruntime ${runtime.onnxruntime} (${runtime.provider}, ` +
    `${runtime.threads} thread${runtime.threads === 1 ? '' : 's'}, ${runtime.platform}) · ${ledger.created_at}</sub>` +
    (runtime.notes?.length ? `\n\n${runtime.notes.map((n) => `> ⚠️ ${n}`).join('\n>\n')}` : '')
  );
}

/** The review above the folds, then one fold per model: shared by the ledger file and the comment. */
export function renderBody(ledger: Ledger, via: Via): { review: string; folds: Fold[] } {
  const review = [...timedOutLines(ledger), renderReview(ledger, via)].filter(Boolean).join('\n\n');
  return { review: review || '_No models._', folds: ledger.models.map(modelFold) };
}

/** The ledger as `ledger.md`: the same layout as the pull-request comment. Pure: the same ledger always gives the same text. */
export function renderMarkdown(ledger: Ledger): string {
  const title = `### prune-guard ${ICON[ledger.verdict]} ${WORD[ledger.verdict]}`;
  const { review, folds } = renderBody(ledger, 'cli');
  return [title, review, ...folds.map(details), renderFooter(ledger)].join('\n\n') + '\n';
}

/** One line per run that stopped at its time budget: where, and that it published no pruned model. */
export function timedOutLines(ledger: Pick<Ledger, 'timed_out' | 'more_timed_out'>): string[] {
  return timedOutRuns(ledger).map(
    (t) => `**Timed out:** ${markdownCode(shownPath(t.model))} ran past its ${t.limit_s} s time budget during _${t.stage}_ (stopped after ${t.elapsed_s.toFixed(1)} s); no pruned model was written.`,
  );
}
