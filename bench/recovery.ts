/**
 * The recovery bench: per model, pruning method and recovery method, what recovery costs (seconds,
 * process CPU) and what it wins back (top-1 on the evaluation set before and after). Recovery runs
 * through runRecovery, as the pipeline runs it, on the model's calibration set.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { markdownTable } from 'markdown-table';
import { loadDataset, takeSamples, type Dataset } from '../src/data/dataset.js';
import { evaluateClassifier } from '../src/onnx/runtime/classifier.js';
import { accuracy } from '../src/measure/metrics.js';
import { loadModel, saveModel } from '../src/onnx/model.js';
import type { ModelProto } from '../src/onnx/proto/onnx_pb.js';
import { modelInputs } from '../src/onnx/signature.js';
import { silentProgress } from '../src/io/progress.js';
import { pruneModel } from '../src/prune/pruneModel.js';
import { sessionFromModel } from '../src/onnx/runtime/session.js';
import { runRecovery } from '../src/recover/runRecovery.js';
import { recoveryKind, stepName } from '../src/pipeline/steps.js';
import { benchConfig, type BenchModel, type BenchOptions } from './stages.js';

/** Recovery methods the bench compares; a new one (e.g. 'distill') is one more entry here. */
export const RECOVERY_METHODS: readonly string[] = ['none', 'reconstruct', 'distill', 'auto'];

/** Pruning methods recovery is benched on, and at what sparsity (structured: 30% of channels, the reference target in docs/recovery.md). */
export const RECOVERY_PRUNING: Readonly<Record<string, number>> = { unstructured: 0.5, structured: 0.3 };

export interface RecoveryRow {
  model: string;
  method: string;
  sparsity: number;
  recovery: string;
  /** sum of the kept recovery steps' `recovery.seconds`, as the ledger reports them */
  seconds: number;
  /** the whole runRecovery call (temperature fit and rejected stages included): wall and process CPU */
  wall_s: number;
  cpu_s: number;
  accuracy_dense: number;
  accuracy_before: number;
  accuracy_after: number;
  /** names of the steps that were kept */
  steps: string[];
  error?: string;
}

async function top1(model: ModelProto, data: Dataset): Promise<number> {
  const session = await sessionFromModel(model, 0);
  try {
    const p = await evaluateClassifier(session, data, { batchSize: 256, outputsAreProbabilities: false, modelPath: 'bench' });
    return accuracy(p.pred, data.labels!);
  } finally {
    await session.release();
  }
}

/** Every (pruning method x recovery method) for one model with labelled data and a calibration set. */
export async function benchRecovery(model: BenchModel & { calib: string }, methods: readonly string[], recoveries: readonly string[], options: BenchOptions, workDir: string): Promise<RecoveryRow[]> {
  const dense = loadModel(model.file).proto;
  const inputs = modelInputs(dense, model.file);
  const all = loadDataset(model.data!, inputs, { requireLabels: true, modelPath: model.file });
  const n = Math.min(all.count, options.evalSamples);
  const data = n < all.count ? takeSamples(all, Array.from({ length: n }, (_, i) => i)) : all;
  const calib = loadDataset(model.calib, inputs, { requireLabels: true, modelPath: model.file });
  const accuracyDense = await top1(dense, data);
  const rows: RecoveryRow[] = [];
  for (const method of methods) {
    const sparsity = RECOVERY_PRUNING[method] ?? 0.5;
    const base = { ...benchConfig(method), sparsity };
    const pruned = await pruneModel(dense, base, { modelPath: model.file, calib });
    const dir = path.join(workDir, `${model.name}.${method.replace(':', 'of')}`);
    fs.mkdirSync(dir, { recursive: true });
    const prunedArtifact = path.join(dir, '01-prune.onnx');
    saveModel(pruned.model, prunedArtifact);
    const before = await top1(pruned.model, data);
    for (const recovery of recoveries) {
      const row: RecoveryRow = { model: model.name, method, sparsity, recovery, seconds: 0, wall_s: 0, cpu_s: 0, accuracy_dense: accuracyDense, accuracy_before: before, accuracy_after: before, steps: [] };
      process.stderr.write(`bench: recovery ${model.name} ${method} ${recovery}\n`);
      try {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const outcome = await runRecovery({
          dense, pruned: pruned.model, prunedArtifact, denseWeights: pruned.denseWeights, calib,
          config: { ...base, recovery: recovery as never }, files: { data: model.data!, calib: model.calib },
          stepsDir: path.join(dir, recovery), progress: silentProgress, structured: pruned.structured,
        });
        row.wall_s = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(c0);
        row.cpu_s = (cpu.user + cpu.system) / 1e6;
        row.seconds = outcome.steps.reduce((s, st) => s + st.info.seconds, 0);
        row.steps = outcome.steps.map((s) => stepName(recoveryKind(s.stage)));
        const last = outcome.steps.at(-1);
        if (last) row.accuracy_after = await top1(loadModel(last.artifact).proto, data);
      } catch (e) {
        row.error = e instanceof Error ? e.message.split('\n')[0] : String(e);
      }
      rows.push(row);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;

export function renderRecoveryTable(rows: readonly RecoveryRow[]): string {
  return markdownTable(
    [
      ['model', 'method', 'recovery', 'recovery s (ledger)', 'wall s / CPU s (whole call)', 'top-1 dense', 'top-1 before', 'top-1 after', 'change vs dense', 'steps kept'],
      ...rows.map((r) => [
        r.model, `${r.method} ${r.sparsity}`, r.recovery, r.seconds.toFixed(1), `${r.wall_s.toFixed(1)} / ${r.cpu_s.toFixed(1)}`,
        pct(r.accuracy_dense), pct(r.accuracy_before), r.error ? `error: ${r.error}` : pct(r.accuracy_after),
        r.error ? '—' : `${((r.accuracy_after - r.accuracy_dense) * 100).toFixed(2)} pt`, r.steps.join(', ') || '—',
      ]),
    ],
    { alignDelimiters: false },
  );
}
