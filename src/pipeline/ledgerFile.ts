import { ledgerJson } from '../ledger/compact.js';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { renderMarkdown } from '../ledger/render.js';
import { LEDGER_SCHEMA, type ClassChange, type Ledger, type ModelLedger, type Step } from '../ledger/types.js';
import { groupSupport } from '../measure/metrics.js';
import { onnxruntimeVersion } from '../onnx/runtime/ort.js';
import { VERSION } from '../version.js';
import type { RunRequest, RunResult } from './request.js';
import type { Dataset } from '../data/dataset.js';
import type { Head } from '../onnx/head.js';
import type { Predictions } from '../onnx/runtime/classifier.js';
import type { BatchPlan } from './exported.js';

/** Per-class (per-label) accuracy changes from dense to the shipped step, largest drop first; `group` is each decision's class or label. */
export function classChanges(dense: Step, final: Step, group: Int32Array, classes: number): ClassChange[] {
  const support = groupSupport(group, classes);
  const changes: ClassChange[] = [];
  dense.per_class!.forEach((d, c) => {
    const f = final.per_class![c];
    if (d === null || f === null) return;
    changes.push({ class: c, dense: d, pruned: f, drop: d - f, support: support[c] });
  });
  return changes.sort((a, b) => b.drop - a.drop || a.class - b.class);
}

/** What the ledger says about the evaluation: the set, the output judged and how, and the batch it ran at. */
export function evalRecord(file: string, data: Dataset, preds: Predictions, head: Head, plan: BatchPlan): ModelLedger['eval'] {
  return {
    data: file,
    samples: data.count,
    classes: preds.classes,
    output: head.output,
    task: head.task,
    scores: head.form,
    batch: plan.evalBatch,
    ...(plan.fixed !== undefined ? { fixed_batch: plan.fixed } : {}),
  };
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
  writeFileAtomic(ledgerPath, ledgerJson(ledger));
  writeFileAtomic(markdownPath, markdown);
  return { ledger, markdown, ledgerPath, markdownPath };
}
