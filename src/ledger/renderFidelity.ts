import { markdownTable } from 'markdown-table';
import { markdownCell, markdownCode } from '../util/escape.js';
import { percent } from './format.js';
import type { ModelLedger, OutputFidelity } from './types.js';

const DASH = '—';
const table = (rows: string[][]): string => markdownTable(rows.map((r) => r.map(markdownCell)), { alignDelimiters: false });
const num = (x: number | null | undefined, show: (x: number) => string): string => (x == null || Number.isNaN(x) ? DASH : show(x));

/**
 * **Output fidelity**: each output of every step after dense against the dense model's, so a reviewer sees
 * which output moved and at which step. Undefined when the run did not compare outputs.
 */
export function fidelitySection(model: ModelLedger): string | undefined {
  const steps = model.steps.filter((s) => s.name !== 'dense' && s.fidelity?.length);
  if (steps.length === 0) return undefined;
  const classLike = steps.some((s) => s.fidelity!.some((f) => f.top1_agreement !== undefined));
  const top5 = steps.some((s) => s.fidelity!.some((f) => f.top5_agreement !== undefined));
  const header = ['Step', 'Output', 'Cosine', 'Rel. L2 error', 'Max |Δ|', ...(classLike ? ['Top-1 agreement'] : []), ...(top5 ? ['Top-5 agreement'] : [])];
  const row = (name: string, f: OutputFidelity): string[] => [
    name,
    markdownCode(f.output).replaceAll('\\|', '|'),
    num(f.cosine, (x) => x.toFixed(4)),
    num(f.rel_l2, (x) => percent(x, 2)),
    num(f.max_abs, (x) => x.toPrecision(3)),
    ...(classLike ? [num(f.top1_agreement, (x) => percent(x, 2))] : []),
    ...(top5 ? [num(f.top5_agreement, (x) => percent(x, 2))] : []),
  ];
  const samples = steps[0].fidelity![0].samples;
  return [`**Output fidelity** <sub>(against the dense model on the same ${samples} samples)</sub>`, table([header, ...steps.flatMap((s) => s.fidelity!.map((f) => row(s.name, f)))])].join('\n\n');
}
