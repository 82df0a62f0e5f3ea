/**
 * A stage of a run beginning. The deadline names the stage a run stopped in from these, and benches time
 * each stage by them; the text a person reads is rendered from the event (`stageLine`), never parsed back.
 * `total` is the stage's units of work when it reports them through `Progress.update`.
 */
export type StageEvent =
  | { kind: 'prune'; model: string; detail: string; schedule?: { step: number; steps: number } }
  | { kind: 'sensitivity'; detail: string; total: number }
  | { kind: 'recover'; work: 'reconstruct' | 'distill' | 'command'; detail: string }
  | { kind: 'recover'; work: 'round'; round: number; rounds: number; detail: string }
  | { kind: 'evaluate'; step: string; total: number }
  | { kind: 'latency'; detail: string; total: number };

/** Where long pipeline stages report how far they are. The pipeline never writes to stdout itself. */
export interface Progress {
  /** a stage begins; one with a `total` then reports its progress through `update` until `stop` */
  stage(event: StageEvent): void;
  /** a remark within the current stage */
  note(message: string): void;
  update(done: number): void;
  stop(): void;
  /** a child command's own output (a recovery command's stdout and stderr), passed on unchanged */
  output(text: string): void;
  /** seconds left of the run's time budget, when it has one; a child process is stopped by then */
  remainingSeconds?(): number | undefined;
}

/** The stage's short name: what a timed-out ledger says the run stopped in (`evaluate dense`, `latency`). */
export function stageName(e: StageEvent): string {
  switch (e.kind) {
    case 'prune':
      return `pruning ${e.model}`;
    case 'sensitivity':
      return 'sensitivity curves';
    case 'recover':
      return e.work === 'round' ? 'recovery round' : 'recovery';
    case 'evaluate':
      return `evaluate ${e.step}`;
    case 'latency':
      return 'latency';
  }
}

/** The stage as one line of the progress log. */
export function stageLine(e: StageEvent): string {
  switch (e.kind) {
    case 'prune':
      return `pruning ${e.model}${e.schedule ? ` (schedule step ${e.schedule.step}/${e.schedule.steps})` : ''}: ${e.detail}`;
    case 'sensitivity':
      return `sensitivity curves (${e.detail})`;
    case 'recover':
      return e.work === 'round' ? `recovery round ${e.round}/${e.rounds}: ${e.detail}` : `recovery: ${e.detail}`;
    case 'evaluate':
      return `evaluate ${e.step}`;
    case 'latency':
      return `latency (${e.detail})`;
  }
}

export const silentProgress: Progress = { stage() {}, note() {}, update() {}, stop() {}, output() {} };

/** Plain stage lines through `write`: for CI logs, which do not render carriage returns, and for callers that collect the text. */
export function lineProgress(write: (text: string) => void): Progress {
  const line = (m: string) => write(`prune-guard: ${m}\n`);
  return { stage: (e) => line(stageLine(e)), note: line, update() {}, stop() {}, output: write };
}
