import { escapeMarkdown } from '../util/escape.js';
import { WORD } from './budgetText.js';
import { percent, ratio, signedPoints } from './format.js';
import type { ModelLedger, Step } from './types.js';

/** One model in one line: what pruning did to it, as every view (headline, fold, check title) says it. */

export function baseName(path: string): string {
  return path.split(/[\\/]/).pop() || path;
}

export function denseStep(model: ModelLedger): Step | undefined {
  return model.steps.find((s) => s.name === 'dense') ?? model.steps[0];
}

export function finalStep(model: ModelLedger): Step | undefined {
  return model.steps.at(-1);
}

/**
 * A step's sparsity in the words that match the method: structured pruning removes weights (the file
 * holds no zeros to count), unstructured and N:M write zeros.
 */
export function sparsityPhrase(method: string, sparsity: number): string {
  if (method === 'structured') return `${percent(sparsity)} of prunable weights removed`;
  if (method === 'hybrid') return `${percent(sparsity)} of prunable weights removed or zeroed`;
  return `${percent(sparsity)} sparse`;
}

/** "1.9x", but "1.04x" near 1, where one decimal would round a real change away */
export const speedRatio = (x: number): string => ratio(x, x < 1.095 ? 2 : 1);

/** `80.0% sparse, 1.9x faster, −0.4 pt accuracy`; parts not measured are left out. */
export function summaryParts(model: ModelLedger): string {
  const dense = denseStep(model);
  const final = finalStep(model);
  const parts: string[] = [];
  if (dense && final) {
    // a quantized model's rounded-to-zero weights are not what the reader asked for; the file size is
    if (final.quantize) parts.push(`INT8 (${ratio(final.size_bytes / Math.max(1, dense.size_bytes), 2)} the size)`);
    if (!final.quantize || final.sparsity >= 0.05) parts.push(sparsityPhrase(model.method, final.sparsity));
    if (dense.latency && final.latency && dense.latency.batch === final.latency.batch && final.latency.p50_ms > 0) {
      const speedup = dense.latency.p50_ms / final.latency.p50_ms;
      // claim a speed change only when the latency samples support it (see the speed funnel)
      if (final.funnel?.speed === 'unchanged') parts.push('speed unchanged within noise');
      else parts.push(speedup >= 1 ? `${speedRatio(speedup)} faster` : `${speedRatio(1 / speedup)} slower`);
    }
    if (dense.accuracy != null && final.accuracy != null) {
      // two decimals, as the accuracy budgets beside it
      parts.push(`${signedPoints(final.accuracy - dense.accuracy, 2)} accuracy`);
    }
  } else {
    parts.push('no steps measured');
  }
  return parts.join(', ');
}

/** `mlp.onnx: 80.0% sparse, 1.9x faster, −0.4 pt accuracy`, plain text for check-run titles and commit statuses */
export function modelSummary(model: ModelLedger): string {
  return `${baseName(model.model)}: ${summaryParts(model)}`;
}

/** `**PASS** · mlp.onnx: 80.0% sparse, 1.9x faster, −0.4 pt accuracy` */
export function renderHeadline(model: ModelLedger): string {
  return `**${WORD[model.verdict]}** · ${escapeMarkdown(baseName(model.model))}: ${summaryParts(model)}`;
}
