import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { renderMarkdown } from '../ledger/render.js';
import { LEDGER_SCHEMA, type ClassChange, type Ledger, type ModelLedger, type Step } from '../ledger/types.js';
import { classSupport } from '../measure/metrics.js';
import { onnxruntimeVersion } from '../onnx/runtime/ort.js';
import { VERSION } from '../version.js';
import type { RunRequest, RunResult } from './request.js';

/** Per-class accuracy changes from dense to the shipped step, largest drop first. */
export function classChanges(dense: Step, final: Step, labels: Int32Array, classes: number): ClassChange[] {
  const support = classSupport(labels, classes);
  const changes: ClassChange[] = [];
  dense.per_class!.forEach((d, c) => {
    const f = final.per_class![c];
    if (d === null || f === null) return;
    changes.push({ class: c, dense: d, pruned: f, drop: d - f, support: support[c] });
  });
  return changes.sort((a, b) => b.drop - a.drop || a.class - b.class);
}

/** The run's ledger.json and ledger.md for one model, both written atomically. */
export function writeLedger(req: RunRequest, provider: { provider: 'cpu' | 'cuda'; note?: string }, model: ModelLedger): RunResult {
  const ledger: Ledger = {
    schema: LEDGER_SCHEMA,
    verdict: model.verdict,
    tool: { name: 'prune-guard', version: VERSION },
    created_at: new Date().toISOString(),
    runtime: {
      onnxruntime: onnxruntimeVersion(),
      provider: provider.provider,
      ...(provider.note ? { notes: [provider.note] } : {}),
      threads: req.config.latency.threads || os.availableParallelism(),
      platform: `${process.platform}-${process.arch}`,
    },
    models: [model],
  };
  const markdown = renderMarkdown(ledger);
  const ledgerPath = path.join(req.out, 'ledger.json');
  const markdownPath = path.join(req.out, 'ledger.md');
  writeFileAtomic(ledgerPath, JSON.stringify(ledger, null, 2) + '\n');
  writeFileAtomic(markdownPath, markdown);
  return { ledger, markdown, ledgerPath, markdownPath };
}
