import { markdownTable } from 'markdown-table';
import { percent, ratio } from './format.js';
import type { ModelLedger } from './types.js';

const DASH = '—';
const cell = (text: string): string => text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
const table = (rows: string[][]): string => markdownTable(rows.map((r) => r.map(cell)), { alignDelimiters: false });

/**
 * What the `quantize:int8` step decided and what onnxruntime runs for it: weight precision and why,
 * the plans timed against float, layers kept float, and each layer's kernel. Undefined without one.
 */
export function quantizeSection(model: ModelLedger): string | undefined {
  const step = model.steps.find((s) => s.quantize);
  const q = step?.quantize;
  if (!q) return undefined;
  const k = q.kernels;
  const how = q.calibration
    ? `static QDQ, ${q.activations} activations, int8 ${q.weights.granularity} weights at ${q.weights.bits} bits; ${q.calibration.method} calibration on ${q.calibration.samples} samples, decisions on ${q.calibration.decision_samples}`
    : `dynamic: uint8 activations quantized per batch at run time, int8 ${q.weights.granularity} weights at ${q.weights.bits} bits`;
  const lines = [
    `**Quantization** <sub>(${step!.name}: ${how})</sub>`,
    `- ${q.weights.reason}`,
    ...(q.activation_choice ? [`- ${q.activation_choice.reason}`] : []),
    (q.calib_quality ? `- calibration ${q.calib_quality.metric}: float ${percent(q.calib_quality.float, 2)}, INT8 ${percent(q.calib_quality.quantized, 2)}; ` : '- ') +
      `${q.quantized_nodes} nodes quantized, ${q.absorbed_relus} Relu absorbed, ${q.folded_batch_norms} BatchNorm folded`,
    `- onnxruntime runs ${k.layers.filter((l) => l.integer).length} of ${k.layers.length} layers in integer kernels; ` +
      `${k.boundaries} QuantizeLinear/DequantizeLinear left (float ↔ int8 crossings), ${k.float_compute_nodes} float Conv/Gemm/MatMul`,
  ];
  if (q.timing_cached) lines.push('- the plans\' timings were read from the measurement cache: the same files, timed earlier on this machine');
  if (q.variants.length > 1) {
    lines.push(
      table([
        ['Plan', 'Kept float', 'Calib quality', 'Speedup vs float', 'Chosen'],
        ...q.variants.map((v) => [v.name, v.keep_float.length ? v.keep_float.join(', ') : DASH, percent(v.calib_quality, 2), v.speedup === null ? DASH : ratio(v.speedup, 2), v.chosen ? '✔' : '']),
      ]),
    );
  }
  const errors = new Map(q.layer_errors.map((e) => [e.node, e]));
  const floatReason = new Map(q.float_layers.map((f) => [f.node, f.reason]));
  lines.push(
    table([
      ['Layer', 'Op', 'Kernel', 'Error in → out'],
      ...k.layers.map((l) => {
        const e = errors.get(l.node);
        const reason = floatReason.get(l.node);
        return [l.node, l.op, `${l.kernel}${reason ? ` (float: ${reason})` : ''}`, e ? `${percent(e.input_error, 2)} → ${percent(e.output_error, 2)}` : DASH];
      }),
    ]),
  );
  return lines.join('\n\n');
}
