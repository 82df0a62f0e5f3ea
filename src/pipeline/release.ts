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
