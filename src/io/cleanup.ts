/**
 * Undo actions for work in progress (a staging folder, a lock), run when the process is told to stop.
 * A SIGTERM from CI cancelling a job then leaves the output folder as the last complete run left it.
 */
const pending = new Set<() => void>();

/** Register an undo action; returns a function that unregisters it once the work is done. */
export function onInterrupt(undo: () => void): () => void {
  pending.add(undo);
  return () => pending.delete(undo);
}

function runPending(): void {
  for (const undo of [...pending]) {
    pending.delete(undo);
    try {
      undo();
    } catch {
      // best effort: the process is about to exit, the other undo actions must still run
    }
  }
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
let installed = false;

/**
 * On SIGINT/SIGTERM/SIGHUP: run the undo actions, say so on stderr and exit 128+signal. The handlers run
 * between event-loop turns, so a synchronous write or rename is never interrupted half-way.
 */
export function installSignalCleanup(stderr: (s: string) => void = (s) => process.stderr.write(s)): void {
  if (installed) return;
  installed = true;
  for (const [signal, code] of Object.entries(SIGNAL_EXIT)) {
    process.on(signal, () => {
      runPending();
      stderr(`prune-guard: stopped by ${signal}; the input model and earlier outputs are unchanged\n`);
      process.exit(code);
    });
  }
}
