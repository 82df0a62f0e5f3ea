/**
 * A model as its exporter wrote it, settled before any work: which output is judged and how to read it,
 * and which batch sizes it can run at. Everything that cannot be handled is refused here, in one line.
 */
import type { Config } from '../config/schema.js';
import type { Dataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { checkLabels, findHead, headProblemMessage, type Head } from '../onnx/head.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { fixedBatch, modelInputs } from '../onnx/signature.js';

/** The judged output of `model`, checked against the evaluation set's labels; a UserError saying how to adapt otherwise. */
export function judgedHead(model: ModelProto, file: string, config: Pick<Config, 'output'>, data: Dataset): Head {
  const found = findHead(model, { output: config.output, labelWidth: data.labels ? (data.labelWidth ?? 1) : undefined });
  if (!found.ok) throw new UserError(headProblemMessage(found.problem, file));
  const problem = checkLabels(found.head, data.labels, data.labelWidth ?? 1, data.path);
  if (problem) throw new UserError(problem.kind === 'no-labels' ? headProblemMessage(problem, file) : `${data.path}: ${headProblemMessage(problem, file)}`);
  return found.head;
}

/** The batch sizes a run measures at, given what the model accepts. */
export interface BatchPlan {
  /** the batch the model's inputs are fixed at; undefined when it is free */
  fixed?: number;
  /** latency batch sizes: the configured ones, or the fixed batch in their place */
  batchSizes: number[];
  /** samples per evaluation run */
  evalBatch: number;
  /** one line when configured sizes were replaced, for the progress log and the ledger's notes */
  note?: string;
}

/**
 * A model exported with a fixed batch runs only at that batch: evaluation, calibration and capture run
 * at it (padding the last batch), and latency batch sizes it cannot take are replaced by it, said once.
 */
export function batchPlan(model: ModelProto, file: string, config: Pick<Config, 'batchSizes' | 'evalBatchSize'>): BatchPlan {
  const fixed = fixedBatch(modelInputs(model, file), file);
  if (fixed === undefined) return { batchSizes: [...config.batchSizes], evalBatch: config.evalBatchSize };
  const other = config.batchSizes.filter((b) => b !== fixed);
  return {
    fixed,
    batchSizes: [fixed],
    evalBatch: fixed,
    ...(other.length > 0 ? { note: `${file}: input batch fixed at ${fixed}: latency measured at batch ${fixed} instead of ${other.join(', ')}, evaluation and calibration run ${fixed} sample${fixed > 1 ? 's' : ''} at a time` } : {}),
  };
}
