import { stageName, type Progress } from '../io/progress.js';

/** Thrown at the first progress report after the time budget ran out; names the stage it stopped in. */
export class TimedOut extends Error {
  override readonly name = 'TimedOut';
  constructor(
    readonly stage: string,
    readonly limitSeconds: number,
    readonly elapsedSeconds: number,
  ) {
    super(`time budget of ${limitSeconds} s ran out during '${stage}' after ${elapsedSeconds.toFixed(1)} s`);
  }
}

/**
 * A per-model time budget checked cooperatively: every progress report (each evaluation batch, each
 * latency round, each stage start) is a checkpoint. Throwing from there unwinds through the stages'
 * try/finally blocks, so onnxruntime sessions are released and the run stops cleanly.
 */
export class Deadline {
  private readonly started = performance.now();
  stage = 'load model and data';

  constructor(readonly limitSeconds: number | undefined) {}

  elapsedSeconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  check(): void {
    if (this.limitSeconds === undefined) return;
    const elapsed = this.elapsedSeconds();
    if (elapsed > this.limitSeconds) throw new TimedOut(this.stage, this.limitSeconds, elapsed);
  }

  /** `inner` with a checkpoint in every call; a stage event also names the current stage. */
  watch(inner: Progress): Progress {
    return {
      stage: (e) => {
        this.check();
        this.stage = stageName(e);
        inner.stage(e);
      },
      note: (m) => {
        this.check();
        inner.note(m);
      },
      update: (done) => {
        inner.update(done);
        this.check();
      },
      stop: () => inner.stop(),
      output: (text) => inner.output(text),
      remainingSeconds: () => (this.limitSeconds === undefined ? undefined : Math.max(0, this.limitSeconds - this.elapsedSeconds())),
    };
  }
}
