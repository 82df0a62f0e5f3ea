import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Drop a big object held in a field (a parsed model) so the garbage collector can take it, in code whose
 * variables stay in scope for a long time (the pipeline's one async function). Reading the field
 * afterwards throws, so a later stage that still needs the object fails loudly instead of seeing an empty
 * or stale model.
 */
export function releaseField<T extends object>(holder: T, key: keyof T & string, what: string): void {
  Object.defineProperty(holder, key, {
    configurable: true,
    enumerable: false,
    get() {
      throw new Error(`internal error: ${what} (${key}) was released to save memory before it was read here; read the saved file instead`);
    },
  });
}

let collect: (() => void) | undefined;

/**
 * JavaScript memory (heap and array buffers) below which collectGarbage does nothing: it could free at
 * most that much, little beside the native memory of the sessions that follow, while a full collection
 * walks every live object (tens of milliseconds on a busy runner, several times a run).
 */
export const COLLECT_FROM_BYTES = 128 * 1024 * 1024;

/**
 * A full garbage collection now, when JavaScript holds enough memory for it to matter. Released models
 * are plain JavaScript garbage, but V8 only collects when JavaScript allocates, and onnxruntime's
 * allocations are native: without this, the next onnxruntime session is created on top of the last
 * stage's garbage (ViT-B/16: about 1 GB still resident after pruning and saving). Node exposes gc() only
 * behind a flag, which V8 accepts at run time for contexts made after it.
 */
export function collectGarbage(): void {
  const heap = getHeapStatistics();
  if (heap.used_heap_size + heap.external_memory < COLLECT_FROM_BYTES) return;
  if (!collect) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed) collect = exposed;
    else {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    }
  }
  collect();
}
