import cliProgress from 'cli-progress';

/** Where long pipeline stages report how far they are. The pipeline never writes to stdout itself. */
export interface Progress {
  note(message: string): void;
  start(label: string, total: number): void;
  update(done: number): void;
  stop(): void;
  /** a child command's own output (a recovery command's stdout and stderr), passed on unchanged */
  output(text: string): void;
}

export const silentProgress: Progress = { note() {}, start() {}, update() {}, stop() {}, output() {} };

/** Plain stage lines through `write`: for CI logs, which do not render carriage returns, and for callers that collect the text. */
export function lineProgress(write: (text: string) => void): Progress {
  return {
    note: (m) => write(`prune-guard: ${m}\n`),
    start: (label) => write(`prune-guard: ${label}\n`),
    update() {},
    stop() {},
    output: write,
  };
}

/** Bars on a terminal; plain stage lines elsewhere. */
export function stderrProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return lineProgress((text) => stream.write(text));
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
    output: (text) => stream.write(text),
  };
}
