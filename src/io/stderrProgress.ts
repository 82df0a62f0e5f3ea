import cliProgress from 'cli-progress';
import { lineProgress, stageLine, type Progress } from './progress.js';

/** Bars on a terminal; plain stage lines elsewhere (CI logs do not render carriage returns). */
export function stderrProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return lineProgress((text) => stream.write(text));
  const line = (m: string) => stream.write(`prune-guard: ${m}\n`);
  let bar: cliProgress.SingleBar | undefined;
  return {
    stage(e) {
      if (!('total' in e)) return void line(stageLine(e));
      bar = new cliProgress.SingleBar(
        { stream, format: `${stageLine(e).padEnd(36)} [{bar}] {value}/{total} {duration_formatted}`, clearOnComplete: false, hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(e.total, 0);
    },
    note: line,
    update: (done) => bar?.update(done),
    stop() {
      bar?.stop();
      bar = undefined;
    },
    output: (text) => stream.write(text),
  };
}
