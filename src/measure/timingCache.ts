import { sha256File } from '../io/hash.js';
import { cacheDir, readCached, writeCached } from '../io/measureCache.js';
import { onnxruntimeVersion } from '../onnx/runtime/ort.js';
import { machineId } from '../prune/structured/hardware.js';

/**
 * A timing's cache key: what it decides, this machine and onnxruntime, the settings it ran under and the
 * contents of every timed file, so the same files timed the same way here are not timed again.
 */
export function timingKey(what: string, files: readonly string[], settings: Record<string, unknown>): string {
  return JSON.stringify({ what, machine: machineId(), ort: onnxruntimeVersion(), ...settings, files: files.map(sha256File) });
}

/**
 * A timing read from the measurement cache under `key` (src/io/measureCache.ts) when one is there and
 * `valid`, else measured and stored: a rerun of the same inputs on this machine decides from the same
 * numbers and ships the same file.
 */
export async function cachedTiming<T>(key: string, valid: (v: unknown) => v is T, measure: () => Promise<T>): Promise<{ value: T; cached: boolean }> {
  const hit = readCached(cacheDir(), key, valid);
  if (hit !== undefined) return { value: hit, cached: true };
  const value = await measure();
  writeCached(cacheDir(), key, value);
  return { value, cached: false };
}
