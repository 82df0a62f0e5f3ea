import cliProgress from 'cli-progress';

/** Where long pipeline stages report how far they are. The pipeline never writes to stdout itself. */
export interface Progress {
  note(message: string): void;
  start(label: string, total: number): void;
  update(done: number): void;
  stop(): void;
  /** seconds left of the run's time budget, when it has one; a child process is stopped by then */
  remainingSeconds?(): number | undefined;
}

export const silentProgress: Progress = { note() {}, start() {}, update() {}, stop() {} };

/** Bars on a terminal; plain stage lines elsewhere (CI logs do not render carriage returns). */
export function stderrProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) {
    return {
      note: (m) => stream.write(`prune-guard: ${m}\n`),
      start: (label) => stream.write(`prune-guard: ${label}\n`),
      update() {},
      stop() {},
    };
  }
  let bar: cliProgress.SingleBar | undefined;
  return {
    note: (m) => stream.write(`prune-guard: ${m}\n`),
    start(label, total) {
      bar = new cliProgress.SingleBar(
        { stream, format: `${label.padEnd(36)} [{bar}] {value}/{total} {duration_formatted}`, clearOnComplete: false, hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
    },
    update: (done) => bar?.update(done),
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
