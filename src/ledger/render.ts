import { markdownTable } from 'markdown-table';
import { allocationSection } from './renderAllocation.js';
import { escapeMarkdown, markdownCell, markdownCode } from '../util/escape.js';
import { timedOutRuns } from './envelope.js';
import { sensitivitySection } from './renderSensitivity.js';
import { bytes, count, ms, percent, points, ratio, signedPoints } from './format.js';
import type { BudgetName, BudgetResult, Ledger, ModelLedger, Step, Verdict } from './types.js';
import { scheduleSection } from './renderSchedule.js';
import { quantizeSection } from './renderQuantize.js';
import { fidelitySection } from './renderFidelity.js';

const WORD: Record<Verdict, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' };
const ICON: Record<Verdict, string> = { pass: '✅', warn: '⚠️', fail: '❌' };
const DASH = '—';
const TOP_CLASSES = 5;

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() || path;
}

const cell = markdownCell;

function table(rows: string[][]): string {
  return markdownTable(
    rows.map((row) => row.map(cell)),
    { alignDelimiters: false },
  );
}

function denseStep(model: ModelLedger): Step | undefined {
  return model.steps.find((s) => s.name === 'dense') ?? model.steps[0];
}

function finalStep(model: ModelLedger): Step | undefined {
  return model.steps.at(-1);
}

/** "1.9x", but "1.04x" near 1, where one decimal would round a real change away */
const speedRatio = (x: number): string => ratio(x, x < 1.095 ? 2 : 1);

/** `**PASS** · mlp.onnx: 80.0% sparse, 1.9x faster, −0.4 pt accuracy`; parts not measured are left out. */
export function renderHeadline(model: ModelLedger): string {
  const dense = denseStep(model);
  const final = finalStep(model);
  const parts: string[] = [];
  if (dense && final) {
    // a quantized model's rounded-to-zero weights are not what the reader asked for; the file size is
    if (final.quantize) parts.push(`INT8 (${ratio(final.size_bytes / Math.max(1, dense.size_bytes), 2)} the size)`);
    if (!final.quantize || final.sparsity >= 0.05) parts.push(`${percent(final.sparsity)} sparse`);
    if (dense.latency && final.latency && dense.latency.batch === final.latency.batch && final.latency.p50_ms > 0) {
      const speedup = dense.latency.p50_ms / final.latency.p50_ms;
      // claim a speed change only when the latency samples support it (see speedFunnel)
      if (final.funnel?.speed === 'unchanged') parts.push('speed unchanged within noise');
      else parts.push(speedup >= 1 ? `${speedRatio(speedup)} faster` : `${speedRatio(1 / speedup)} slower`);
    }
    if (dense.accuracy != null && final.accuracy != null) {
      parts.push(`${signedPoints(final.accuracy - dense.accuracy)} accuracy`);
    }
  } else {
    parts.push('no steps measured');
  }
  return `**${WORD[model.verdict]}** · ${escapeMarkdown(baseName(model.model))}: ${parts.join(', ')}`;
}

function budgetValue(name: BudgetName, x: number): string {
  switch (name) {
    case 'accuracy-drop':
    case 'class-accuracy-drop':
    case 'ece-increase':
    case 'shift-accuracy-drop':
    case 'label-f1-drop':
      return points(x);
    case 'latency-regression':
    case 'target-reduction':
      return percent(x);
    case 'min-speedup':
      return ratio(x);
    case 'p95-latency-ms':
      return ms(x);
    case 'max-size-bytes':
      return bytes(x);
    case 'min-output-cosine':
      return x.toFixed(4);
    case 'max-output-rel-error':
      return percent(x, 2);
  }
}

/** `min-output-cosine`, or `min-output-cosine` · `boxes` for a limit held by one output (the table cell escapes pipes) */
const budgetLabel = (b: BudgetResult): string => `\`${b.name}\`` + (b.output === undefined ? '' : ` · ${markdownCode(b.output).replaceAll('\\|', '|')}`);

/** ` [lo, hi] 95%` after the point value, so readers see how sure the gate is. */
function intervalText(b: BudgetResult): string {
  if (!b.ci) return '';
  const level = b.confidence === undefined ? '' : ` ${Math.round(b.confidence * 1000) / 10}%`;
  const p = b.p_value === undefined ? '' : `, p=${b.p_value < 0.001 ? b.p_value.toExponential(1) : b.p_value.toFixed(3)}`;
  return ` [${budgetValue(b.name, b.ci[0])}, ${budgetValue(b.name, b.ci[1])}]${level}${p}`;
}

function budgetTable(budgets: readonly BudgetResult[]): string {
  if (budgets.length === 0) return '_No budgets checked._';
  return table([
    ['Budget', 'Limit', 'Actual', 'Verdict', 'Detail'],
    ...budgets.map((b) => [
      budgetLabel(b),
      `${b.direction === 'max' ? '≤' : '≥'} ${budgetValue(b.name, b.limit)}`,
      b.actual === null ? DASH : budgetValue(b.name, b.actual) + intervalText(b),
      `${ICON[b.verdict]} ${b.verdict}`,
      b.detail,
    ]),
  ]);
}

const orDash = (x: number | null | undefined, show: (x: number) => string): string => (x == null ? DASH : show(x));

function stepTable(steps: readonly Step[]): string {
  const batch = steps.find((s) => s.latency)?.latency?.batch;
  const at = batch === undefined ? '' : ` (b=${batch})`;
  const latency = (s: Step, key: 'p50_ms' | 'p95_ms'): string => {
    if (!s.latency) return DASH;
    const value = s.latency[key].toFixed(2);
    return s.latency.batch === batch ? value : `${value} (b=${s.latency.batch})`;
  };
  const f1 = steps.some((s) => s.f1 !== undefined);
  return table([
    ['Step', 'Sparsity', 'Params', 'Nonzero', 'MACs', 'Size', 'Gzip', 'Accuracy', ...(f1 ? ['F1'] : []), 'ECE', 'Agreement', `p50 ms${at}`, `p95 ms${at}`],
    ...steps.map((s) => [
      s.name,
      percent(s.sparsity),
      count(s.params),
      count(s.nonzero_params),
      count(s.flops),
      bytes(s.size_bytes),
      bytes(s.gzip_bytes),
      orDash(s.accuracy, (x) => percent(x, 2)),
      ...(f1 ? [orDash(s.f1, (x) => percent(x, 2))] : []),
      orDash(s.ece, (x) => percent(x, 2)),
      orDash(s.agreement, (x) => percent(x, 2)),
      latency(s, 'p50_ms'),
      latency(s, 'p95_ms'),
    ]),
  ]);
}

/** Methods whose zeros onnxruntime's CPU kernels still multiply: their gain is size, not speed. */
const zerosNotSkipped = (method: string): boolean => method === 'unstructured' || /^\d+:\d+$/.test(method);

/** "Where the speed went": parameters -> MACs -> ideal speedup -> measured speedup -> efficiency. */
function funnelSection(model: ModelLedger): string | undefined {
  const steps = model.steps.filter((s) => s.funnel);
  if (steps.length === 0) return undefined;
  const dense = denseStep(model);
  const batch = steps[0].funnel!.batch;
  const p = (s: Step, key: 'p50_ms' | 'p95_ms'): string => (s.latency ? s.latency[key].toFixed(2) : DASH);
  const speedCell = (s: Step): string => {
    const f = s.funnel!;
    if (s === dense) return 'baseline';
    if (f.speedup === null) return DASH;
    const verdict = f.speed === 'unchanged' ? 'within noise' : f.speed ?? '';
    return `${ratio(f.speedup)} (${verdict}${f.p_value === null ? '' : `, p=${f.p_value < 0.001 ? '<0.001' : f.p_value.toFixed(3)}`})`;
  };
  const lines = [
    `**Where the speed went** <sub>(b=${batch}, every ratio against the dense model; ideal = dense MACs / MACs with a nonzero weight)</sub>`,
    table([
      ['Step', 'Nonzero params', 'MACs run', 'MACs with nonzero weight', 'Weight bytes', 'Ideal speedup', 'p50 ms', 'p95 ms', 'Speedup (p50)', 'Efficiency'],
      ...steps.map((s) => {
        const f = s.funnel!;
        const base = s === dense;
        return [
          s.name,
          percent(f.params_ratio),
          percent(f.flops_ratio),
          percent(f.sparse_flops_ratio),
          orDash(f.bytes_ratio, (x) => percent(x)),
          ratio(f.ideal_speedup),
          p(s, 'p50_ms'),
          p(s, 'p95_ms'),
          speedCell(s),
          base ? DASH : orDash(f.efficiency, (x) => percent(x, 0)),
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

/** Past this many classes, a class is listed only when its drop is significant or beyond the budget. */
const FEW_CLASSES = 20;
const SIGNIFICANT = 0.05;

function classTable(model: ModelLedger): string | undefined {
  const unit = model.eval.task === 'multilabel' ? 'Label' : 'Class';
  const units = unit === 'Label' ? 'Labels' : 'Classes';
  const lost = model.class_changes.filter((c) => c.drop > 0).sort((a, b) => b.drop - a.drop);
  const many = model.eval.classes > FEW_CLASSES;
  // with many classes most have a handful of samples: a lost sample is a large drop that means nothing
  const matter = many ? lost.filter((c) => c.beyond_budget || (c.p_value !== undefined && c.p_value < SIGNIFICANT)) : lost;
  const shown = matter.slice(0, TOP_CLASSES);
  const lostCount = lost.length + (model.class_changes_rest?.lost ?? 0);
  if (shown.length === 0) {
    if (!many || lostCount === 0) return undefined;
    return `**${units}:** ${lostCount} of ${model.eval.classes} lost accuracy, none significantly (McNemar p < ${SIGNIFICANT}) nor beyond the class budget; with ${(model.eval.samples / model.eval.classes).toFixed(1)} samples per class on average, single-class drops are noise here.`;
  }
  return [
    many ? `**${units} that lost most** <sub>(of ${model.eval.classes}: only drops that are significant or beyond the budget; ${lostCount} lost accuracy in all)</sub>` : `**${units} that lost most**`,
    table([
      [unit, 'Dense', 'Pruned', 'Drop', 'Support'],
      ...shown.map((c) => [
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
  return table([
    ['Step', 'p50 ms (interval)', 'p99 ms', 'Load ms', 'Throughput', 'Peak RSS (model adds)', 'Energy / sample'],
    ...rows.map((s) => {
      const c = s.runtime_cost!;
      return [
        s.name,
        withCi(s),
        orDash(s.latency?.p99_ms, (x) => x.toFixed(3)),
        c.load_ms.toFixed(1),
        c.throughput_samples_per_s === undefined ? DASH : `${Math.round(c.throughput_samples_per_s)} samples/s (b=${c.throughput_batch})`,
        c.peak_rss_bytes == null ? 'not available' : `${bytes(c.peak_rss_bytes)} (+${bytes(c.session_rss_bytes ?? 0)})`,
        c.energy_j_per_sample === null ? 'not available' : `${(c.energy_j_per_sample * 1000).toFixed(3)} mJ`,
      ];
    }),
  ]);
}

function predictionShiftTable(model: ModelLedger): string | undefined {
  if (!model.prediction_shift?.length) return undefined;
  const p = (x: number) => (x < 0.001 ? x.toExponential(1) : x.toFixed(3));
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

/** "10 classes", "binary sigmoid 'prob'", "5 sigmoid labels", and the batch when the model fixes it. */
function evalWhat(e: ModelLedger['eval']): string {
  const out = markdownCode(e.output ?? '');
  const what = e.outputs
    ? `outputs ${e.outputs.map((o) => markdownCode(o)).join(', ')} against the dense model's`
    : e.task === 'binary' ? `binary sigmoid ${out}` : e.task === 'multilabel' ? `${e.classes} sigmoid labels of ${out}` : `${e.classes} classes${e.scores && e.scores !== 'logits' ? ` (${e.scores} of ${out})` : ''}`;
  return e.fixed_batch !== undefined ? `${what}, batch fixed at ${e.fixed_batch}` : what;
}

function renderModel(model: ModelLedger): string {
  const about =
    `<sub>${markdownCode(model.model)} → ${markdownCode(model.pruned)} · ${model.method} to ${percent(model.target_sparsity)} target · ` +
    `eval on ${markdownCode(model.eval.data)}: ${model.eval.samples} samples, ${evalWhat(model.eval)}</sub>`;
  const sections = [renderHeadline(model), about, budgetTable(model.budgets)];
  if (model.steps.length > 0) sections.push(stepTable(model.steps));
  const fidelity = fidelitySection(model);
  if (fidelity) sections.push(fidelity);
  const schedule = scheduleSection(model);
  if (schedule) sections.push(schedule);
  const funnel = funnelSection(model);
  if (funnel) sections.push(funnel);
  const allocation = model.allocation && allocationSection(model.allocation);
  if (allocation) sections.push(allocation);
  const quantize = quantizeSection(model);
  if (quantize) sections.push(quantize);
  const classes = classTable(model);
  if (classes) sections.push(classes);
  if (model.notes?.length) sections.push(['**Notes**', ...model.notes.map((n) => `- ${cell(n)}`)].join('\n'));
  const cost = costTable(model.steps);
  if (cost) sections.push(cost);
  const shifts = shiftTable(model);
  if (shifts) sections.push(shifts);
  const predicted = predictionShiftTable(model);
  if (predicted) sections.push(predicted);
  if (model.sensitivity) sections.push(sensitivitySection(model.sensitivity));
  return sections.join('\n\n');
}

/** The ledger as a GitHub PR comment. Pure: the same ledger always gives the same text. */
export function renderMarkdown(ledger: Ledger): string {
  const { runtime, tool } = ledger;
  const footer =
    `<sub>${tool.name} ${tool.version} · onnxruntime ${runtime.onnxruntime} (${runtime.provider}, ` +
    `${runtime.threads} threads, ${runtime.platform}) · ${ledger.created_at}</sub>` +
    (runtime.notes?.length ? `\n\n${runtime.notes.map((n) => `> ⚠️ ${n}`).join('\n>\n')}` : '');
  const title = `### prune-guard ${ICON[ledger.verdict]} ${WORD[ledger.verdict]}`;
  const models = ledger.models.length ? ledger.models.map(renderModel).join('\n\n---\n\n') : '_No models._';
  const timedOut = timedOutLines(ledger).map((l) => `${l}\n\n`).join('');
  return `${title}\n\n${timedOut}${models}\n\n${footer}\n`;
}

/** One line per run that stopped at its time budget: where, and that it published no pruned model. */
export function timedOutLines(ledger: Pick<Ledger, 'timed_out' | 'more_timed_out'>): string[] {
  return timedOutRuns(ledger).map(
    (t) => `**Timed out:** ${markdownCode(t.model)} ran past its ${t.limit_s} s time budget during _${t.stage}_ (stopped after ${t.elapsed_s.toFixed(1)} s); no pruned model was written.`,
  );
}
