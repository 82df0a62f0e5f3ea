import * as os from 'node:os';
import * as path from 'node:path';
import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import type { LedgerRuntime } from '../ledger/envelope.js';
import { ledgerJson } from '../ledger/compact.js';
import { renderMarkdown } from '../ledger/render.js';
import type { AllocationRecord, Ledger, ModelLedger, ScheduleLedger, SensitivityInfo } from '../ledger/types.js';
import type { Head } from '../onnx/head.js';
import { onnxruntimeVersion } from '../onnx/runtime/ort.js';
import type { BatchPlan } from './exported.js';
import type { CutShort } from '../recover/work.js';
import type { MeasuredStep } from './measureStep.js';
import { predictionShifts, shiftResults, type Judged } from './verdicts.js';

/** What the measurements ran on: onnxruntime, the provider (and why, when it is not the one asked for), threads, platform. */
export function measuredRuntime(provider: { provider: string; note?: string }, config: Pick<Config, 'latency'>): LedgerRuntime {
  return {
    onnxruntime: onnxruntimeVersion(),
    provider: provider.provider,
    threads: config.latency.threads || os.availableParallelism(),
    platform: `${process.platform}-${process.arch}`,
    ...(provider.note ? { notes: [provider.note] } : {}),
  };
}

export interface ModelLedgerInput {
  /** the input (or base) model and the shipped (or head) model */
  model: string;
  pruned: string;
  method: string;
  targetSparsity: number;
  /** every measured step in ledger order: the reference first, the shipped model last */
  steps: readonly MeasuredStep[];
  /** the two ends the budgets judged: dense (or base) and the shipped (or head) step */
  reference: MeasuredStep;
  shipped: MeasuredStep;
  judged: Judged;
  data: { path: string; set: Dataset };
  /** the output judged and how it is read */
  head: Head;
  /** the batches the models ran at */
  plan: BatchPlan;
  shifts: readonly { name: string; data: Dataset }[];
  config: Pick<Config, 'corruptions' | 'confidence'>;
  notes?: readonly string[];
  scope?: ModelLedger['scope'];
  sensitivity?: SensitivityInfo;
  schedule?: ScheduleLedger;
  allocation?: AllocationRecord;
  /** the recovery-time-budget safety stop fired */
  cutShort?: CutShort;
}

/** One model's ledger record from its measured steps and judged budgets: every strategy and `compare` build it here. */
export function buildModelLedger(i: ModelLedgerInput): ModelLedger {
  return {
    model: i.model,
    pruned: i.pruned,
    method: i.method,
    target_sparsity: i.targetSparsity,
    steps: i.steps.map((m) => m.step),
    budgets: i.judged.budgets,
    verdict: i.judged.verdict,
    class_changes: i.judged.classChanges,
    eval: evalRecord(i.data.path, i.data.set, i.reference.preds.classes, i.head, i.plan),
    ...(i.notes?.length ? { notes: [...i.notes] } : {}),
    shifts: shiftResults(i.reference, i.shipped, i.shifts, new Set(i.config.corruptions), i.config.confidence),
    prediction_shift: predictionShifts(i.reference, i.shipped, i.shifts),
    ...(i.scope ? { scope: i.scope } : {}),
    ...(i.sensitivity ? { sensitivity: i.sensitivity } : {}),
    ...(i.schedule ? { schedule: i.schedule } : {}),
    ...(i.allocation ? { allocation: i.allocation } : {}),
    ...(i.cutShort ? { cut_short: { stage: i.cutShort.stage, limit_s: i.cutShort.limit_s } } : {}),
  };
}

/** What the ledger says about the evaluation: the set, the output judged and how, and the batch it ran at. */
function evalRecord(file: string, data: Dataset, classes: number, head: Head, plan: BatchPlan): ModelLedger['eval'] {
  return {
    data: file,
    samples: data.count,
    classes,
    output: head.output,
    task: head.task,
    scores: head.form,
    batch: plan.evalBatch,
    ...(plan.fixed !== undefined ? { fixed_batch: plan.fixed } : {}),
  };
}
/** The names writeLedgerFiles writes. */
export const LEDGER_FILES = ['ledger.json', 'ledger.md'] as const;

/** ledger.json and ledger.md in `dir`, each written atomically; returns the Markdown and both paths. */
export function writeLedgerFiles(dir: string, ledger: Ledger): { markdown: string; ledgerPath: string; markdownPath: string } {
  const markdown = renderMarkdown(ledger);
  const ledgerPath = path.join(dir, 'ledger.json');
  const markdownPath = path.join(dir, 'ledger.md');
  writeFileAtomic(ledgerPath, ledgerJson(ledger));
  writeFileAtomic(markdownPath, markdown);
  return { markdown, ledgerPath, markdownPath };
}
