import { markdownTable } from 'markdown-table';
import { bytes, count, ms, percent, points, ratio, signedPoints } from './format.js';
import type { BudgetName, BudgetResult, Ledger, ModelLedger, Step, Verdict } from './types.js';

const WORD: Record<Verdict, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' };
const ICON: Record<Verdict, string> = { pass: '✅', warn: '⚠️', fail: '❌' };
const DASH = '—';
const TOP_CLASSES = 5;

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() || path;
}

/** Table cells must stay on one line and must not close the cell early. */
function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

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

/** `**PASS** · mlp.onnx: 80.0% sparse, 1.9x faster, −0.4 pt accuracy`; parts not measured are left out. */
export function renderHeadline(model: ModelLedger): string {
  const dense = denseStep(model);
  const final = finalStep(model);
  const parts: string[] = [];
  if (dense && final) {
    parts.push(`${percent(final.sparsity)} sparse`);
    if (dense.latency && final.latency && dense.latency.batch === final.latency.batch && final.latency.p50_ms > 0) {
      const speedup = dense.latency.p50_ms / final.latency.p50_ms;
      parts.push(speedup >= 1 ? `${ratio(speedup, 1)} faster` : `${ratio(1 / speedup, 1)} slower`);
    }
    if (dense.accuracy != null && final.accuracy != null) {
      parts.push(`${signedPoints(final.accuracy - dense.accuracy)} accuracy`);
    }
  } else {
    parts.push('no steps measured');
  }
  return `**${WORD[model.verdict]}** · ${baseName(model.model)}: ${parts.join(', ')}`;
}

function budgetValue(name: BudgetName, x: number): string {
  switch (name) {
    case 'accuracy-drop':
    case 'class-accuracy-drop':
    case 'ece-increase':
    case 'shift-accuracy-drop':
      return points(x);
    case 'latency-regression':
      return percent(x);
    case 'min-speedup':
      return ratio(x);
    case 'p95-latency-ms':
      return ms(x);
    case 'max-size-bytes':
      return bytes(x);
  }
}

function budgetTable(budgets: readonly BudgetResult[]): string {
  if (budgets.length === 0) return '_No budgets checked._';
  return table([
    ['Budget', 'Limit', 'Actual', 'Verdict', 'Detail'],
    ...budgets.map((b) => [
      `\`${b.name}\``,
      `${b.direction === 'max' ? '≤' : '≥'} ${budgetValue(b.name, b.limit)}`,
      b.actual === null ? DASH : budgetValue(b.name, b.actual),
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
  return table([
    ['Step', 'Sparsity', 'Params', 'Nonzero', 'MACs', 'Size', 'Gzip', 'Accuracy', 'ECE', 'Agreement', `p50 ms${at}`, `p95 ms${at}`],
    ...steps.map((s) => [
      s.name,
      percent(s.sparsity),
      count(s.params),
      count(s.nonzero_params),
      count(s.flops),
      bytes(s.size_bytes),
      bytes(s.gzip_bytes),
      orDash(s.accuracy, (x) => percent(x, 2)),
      orDash(s.ece, (x) => percent(x, 2)),
      orDash(s.agreement, (x) => percent(x, 2)),
      latency(s, 'p50_ms'),
      latency(s, 'p95_ms'),
    ]),
  ]);
}

function classTable(model: ModelLedger): string | undefined {
  const lost = model.class_changes
    .filter((c) => c.drop > 0)
    .sort((a, b) => b.drop - a.drop)
    .slice(0, TOP_CLASSES);
  if (lost.length === 0) return undefined;
  return [
    '**Classes that lost most**',
    table([
      ['Class', 'Dense', 'Pruned', 'Drop', 'Support'],
      ...lost.map((c) => [String(c.class), percent(c.dense), percent(c.pruned), points(c.drop, 1), String(c.support)]),
    ]),
  ].join('\n\n');
}

function renderModel(model: ModelLedger): string {
  const about =
    `<sub>\`${model.model}\` → \`${model.pruned}\` · ${model.method} to ${percent(model.target_sparsity)} target · ` +
    `eval on \`${model.eval.data}\`: ${model.eval.samples} samples, ${model.eval.classes} classes</sub>`;
  const sections = [renderHeadline(model), about, budgetTable(model.budgets)];
  if (model.steps.length > 0) sections.push(stepTable(model.steps));
  const classes = classTable(model);
  if (classes) sections.push(classes);
  return sections.join('\n\n');
}

/** The ledger as a GitHub PR comment. Pure: the same ledger always gives the same text. */
export function renderMarkdown(ledger: Ledger): string {
  const { runtime, tool } = ledger;
  const footer =
    `<sub>${tool.name} ${tool.version} · onnxruntime ${runtime.onnxruntime} (${runtime.provider}, ` +
    `${runtime.threads} threads, ${runtime.platform}) · ${ledger.created_at}</sub>`;
  const title = `### prune-guard ${ICON[ledger.verdict]} ${WORD[ledger.verdict]}`;
  const models = ledger.models.length ? ledger.models.map(renderModel).join('\n\n---\n\n') : '_No models._';
  const t = ledger.timed_out;
  const timedOut = t
    ? `**Timed out:** \`${t.model}\` ran past its ${t.limit_s} s time budget during _${t.stage}_ (stopped after ${t.elapsed_s.toFixed(1)} s); no pruned model was written.\n\n`
    : '';
  return `${title}\n\n${timedOut}${models}\n\n${footer}\n`;
}
