import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import { readArrays, writeNpz } from '../../src/data/npz.js';
import type { Ledger, ModelLedger, Step } from '../../src/ledger/types.js';
import { valueInfo } from '../../src/onnx/build.js';
import { loadModel, saveModel } from '../../src/onnx/model.js';
import { DataType } from '../../src/onnx/tensor.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { runCli } from './cli.js';
import { FIXTURES, tempDir } from './fixtures.js';
import { referenceEval, type EvalOptions, type EvalResult, type OutputKind } from './referenceEval.js';

export const EXPORTS = path.join(FIXTURES, 'exports');
export const exported = (file: string): string => path.join(EXPORTS, file);

/** Latency and recovery kept short: these runs prove how a model is read, not how fast it is. */
export const FAST = ['--runs', '2', '--warmup', '0', '--batch-sizes', '1', '--max-seconds', '5', '--recovery-time-budget', '20', '--quiet'];

export interface CliRun {
  code: number;
  out: string;
  ledger?: Ledger;
  model?: ModelLedger;
  stderr: string;
}

/** `prune-guard run` in process, through the CLI's own argument parsing and exit codes; stderr captured. */
export async function cliInProcess(args: readonly string[]): Promise<CliRun> {
  const out = args.includes('--out') ? args[args.indexOf('--out') + 1] : path.join(tempDir(), 'out');
  const argv = args.includes('--out') ? [...args] : [...args, '--out', out];
  const { code, stderr } = await runCli(argv);
  const file = path.join(out, 'ledger.json');
  const ledger = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Ledger) : undefined;
  // every ledger written is the public contract's shape
  if (ledger) expect(validateLedger(ledger)).toEqual([]);
  return { code: code ?? -1, out, ledger, model: ledger?.models[0], stderr };
}

/** `prune-guard run` of an export in test/fixtures/exports on `data`, latency and recovery kept short. */
export const runExport = (model: string, data: string, ...flags: string[]): Promise<CliRun> => cliInProcess(['run', '--model', exported(model), '--data', data, ...FAST, ...flags]);

/** The element types of a model's weight matrices (initializers of rank 2 or more). */
export function initializerTypes(file: string): Set<number> {
  return new Set(loadModel(file).proto.graph!.initializer.filter((t) => t.dims.length >= 2).map((t) => t.dataType));
}

/** cnn-opset13 with its pooled features (the ReduceMean) as a second output, written into `dir`. */
export function twoOutputs(dir: string): string {
  const model = loadModel(exported('cnn-opset13.onnx')).proto;
  const gap = model.graph!.node.find((n) => n.opType === 'ReduceMean')!;
  // [batch, 32]: the mean over H and W of the last convolution's 32 channels (keepdims 0)
  model.graph!.output.push(valueInfo(gap.output[0], DataType.FLOAT, ['batch', 32]));
  const file = path.join(dir, 'two-outputs.onnx');
  saveModel(model, file);
  return file;
}

/** The first `n` samples of an .npz (every array cut along its first axis), written to a temp file. */
export function head(file: string, n: number): string {
  const arrays = readArrays(file);
  const cut: Record<string, ReturnType<typeof arrays.get> & object> = {};
  for (const name of arrays.keys()) {
    const arr = arrays.get(name)!;
    const per = arr.data.length / arr.shape[0];
    cut[name] = { dtype: arr.dtype, shape: [Math.min(n, arr.shape[0]), ...arr.shape.slice(1)], data: arr.data.subarray(0, Math.min(n, arr.shape[0]) * per) as never };
  }
  const dest = path.join(tempDir('prune-guard-subset-'), path.basename(file));
  writeNpz(dest, cut);
  return dest;
}

const evaluated = new Map<string, Promise<EvalResult>>();

/**
 * referenceEval, computed once per file version and data: the dense model every run of a test file
 * starts from is evaluated once, not once per run. A file is told apart by its path, size and mtime.
 */
function memoReferenceEval(model: string, data: string, opts: EvalOptions): Promise<EvalResult> {
  const version = (f: string) => {
    const st = fs.statSync(f);
    return `${f}:${st.size}:${st.mtimeMs}`;
  };
  const key = JSON.stringify([version(model), version(data), opts]);
  let ref = evaluated.get(key);
  if (!ref) evaluated.set(key, (ref = referenceEval(model, data, opts)));
  return ref;
}

// 0.1 pt, or one decision where a set is too small for 0.1 pt to allow any (float16 may flip a near-tie)
const accuracyTolerance = (n: number): number => Math.max(0.001, 1.01 / n);

/** A step's accuracy and NLL equal the independent evaluator's on the step's own saved file: within 0.1 pt and 1%. */
export async function expectReproduced(step: Step, data: string, output: OutputKind, opts: { outputName?: string } = {}): Promise<EvalResult> {
  const ref = await memoReferenceEval(step.artifact, data, { output, ...(opts.outputName ? { outputName: opts.outputName } : {}) });
  const decisions = ref.pred.length;
  expect(Math.abs(step.accuracy! - ref.accuracy), `${step.name} accuracy ${step.accuracy} vs reference ${ref.accuracy}`).toBeLessThanOrEqual(accuracyTolerance(decisions));
  expect(Math.abs(step.nll! - ref.nll), `${step.name} NLL ${step.nll} vs reference ${ref.nll}`).toBeLessThanOrEqual(0.01 * ref.nll);
  return ref;
}
