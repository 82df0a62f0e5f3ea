import * as fs from 'node:fs';

/**
 * Peak memory of one stage, measured honestly in a single process. On Linux the kernel keeps the
 * process's peak resident set size (VmHWM) and lets the process reset it by writing 5 to
 * /proc/self/clear_refs, so resetting before a stage and reading after gives the true peak RSS *during*
 * that stage, synchronous loops and onnxruntime's native allocations included (a timer that samples
 * process.memoryUsage() never fires inside a synchronous loop, and maxRSS is per process, not per stage).
 * The peak is the whole process's RSS (what the runner must have), not an increment. Elsewhere we fall
 * back to RSS after the stage, and say so.
 */
export interface PeakMeter {
  /** how the numbers are taken, for the report */
  method: 'linux-vmhwm' | 'rss-after';
  reset(): void;
  /** bytes */
  peak(): number;
}

function readHwm(): number | undefined {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : undefined;
}

export function peakMeter(): PeakMeter {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    if (readHwm() !== undefined) {
      return {
        method: 'linux-vmhwm',
        reset: () => fs.writeFileSync('/proc/self/clear_refs', '5'),
        peak: () => readHwm()!,
      };
    }
  } catch {
    // not Linux, or /proc not writable: fall through
  }
  return { method: 'rss-after', reset() {}, peak: () => process.memoryUsage().rss };
}
