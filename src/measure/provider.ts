import * as fs from 'node:fs';
import type { ExecutionProvider } from '../config/schema.js';
import { describe, UserError } from '../errors.js';
import { onnxruntime } from '../onnx/runtime/ort.js';

export interface ResolvedProvider {
  provider: 'cpu' | 'cuda';
  /** shown in the ledger when the provider is not the one asked for, or why */
  note?: string;
}

/** Why CUDA cannot run here, or undefined when it might: checked before any session is created. */
function cudaUnavailable(): string | undefined {
  const { ort, source } = onnxruntime();
  const cuda = ort.listSupportedBackends?.().find((b) => b.name === 'cuda');
  if (!cuda) return `the onnxruntime-node in use (${source}) has no CUDA backend`;
  if (!fs.existsSync('/dev/nvidia0') && !fs.existsSync('/dev/nvidiactl')) return 'no NVIDIA GPU is visible (/dev/nvidia0 is missing)';
  return undefined;
}

/**
 * The execution provider to measure with. `cuda` must really run on CUDA or the run stops; `auto`
 * tries CUDA and falls back to CPU with a note, so a ledger never claims GPU numbers it did not measure.
 * `probeModel` is opened once on CUDA to catch a runtime without the CUDA provider libraries.
 */
export async function resolveProvider(requested: ExecutionProvider, probeModel: string): Promise<ResolvedProvider> {
  if (requested === 'cpu') return { provider: 'cpu' };
  let why = cudaUnavailable();
  if (!why) {
    try {
      const { ort } = onnxruntime();
      const session = await ort.InferenceSession.create(probeModel, { executionProviders: ['cuda'] });
      await session.release();
      return { provider: 'cuda' };
    } catch (e) {
      why = `onnxruntime could not open a CUDA session (${describe(e).split('\n')[0]})`;
    }
  }
  if (requested === 'cuda') {
    throw new UserError(`--execution-provider cuda: ${why}; run on a GPU runner with a CUDA-enabled onnxruntime-node (set PRUNE_GUARD_ONNXRUNTIME_PATH), or use --execution-provider cpu or auto`);
  }
  return { provider: 'cpu', note: `execution provider auto: measured on CPU because ${why}` };
}
