import * as bundled from 'onnxruntime-node';
import { createRequire } from 'node:module';
import { UserError, describe } from '../../errors.js';
import { shortOrtError } from './ortErrors.js';

export type Ort = typeof bundled;
export type OrtSession = bundled.InferenceSession;

let chosen: { ort: Ort; source: string } | undefined;

/**
 * The onnxruntime-node to use: the one bundled with prune-guard, or a user's own installation (a
 * CUDA-enabled build on a GPU runner) named by PRUNE_GUARD_ONNXRUNTIME_PATH.
 */
export function onnxruntime(): { ort: Ort; source: string } {
  if (chosen) return chosen;
  const custom = process.env.PRUNE_GUARD_ONNXRUNTIME_PATH;
  if (custom) {
    try {
      chosen = { ort: createRequire(import.meta.url)(custom) as Ort, source: custom };
    } catch (e) {
      throw new UserError(`PRUNE_GUARD_ONNXRUNTIME_PATH=${custom}: cannot load onnxruntime-node there (${describe(e).split('\n')[0]}); point it at an installed onnxruntime-node package folder`);
    }
  } else {
    chosen = { ort: bundled, source: 'bundled' };
  }
  return chosen;
}

export function onnxruntimeVersion(): string {
  const { ort } = onnxruntime();
  return (ort.env as { versions?: { common?: string } }).versions?.common ?? 'unknown';
}

export interface SessionOptions {
  /** intra-op threads; 0 lets onnxruntime use every core */
  threads: number;
  /** resolved by resolveProvider(); default cpu */
  provider?: 'cpu' | 'cuda';
  /**
   * false: the intra-op worker threads sleep between runs instead of spinning. Sessions timed against
   * each other need it: another session's spinning workers take cores from the one running, unevenly
   * and for the pair's whole life, so one session ran 10-17% faster than another of the same file.
   */
  spinning?: boolean;
}

/** A session (CPU unless a resolved provider says otherwise) with full graph optimisation, the way a deployment would run the model. */
export async function openSession(modelPath: string, opts: SessionOptions): Promise<OrtSession> {
  const { ort } = onnxruntime();
  try {
    return await ort.InferenceSession.create(modelPath, {
      executionProviders: [opts.provider ?? 'cpu'],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      intraOpNumThreads: opts.threads,
      interOpNumThreads: 1,
      ...(opts.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
    });
  } catch (e) {
    throw new UserError(`${modelPath}: onnxruntime cannot load the model: ${shortOrtError(describe(e))}`);
  }
}
