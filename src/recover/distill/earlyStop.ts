/**
 * When distillation stops: after `patience` epochs without a clear gain. The best epoch is kept at any
 * gain, but only a gain of `clearGain` (a fraction) since the last clear one restarts the count: on a
 * plateau the held-out score wanders by a percent or so, and every small new best would otherwise buy
 * `patience` more epochs that change nothing.
 */
export class EarlyStop {
  private best: number;
  private anchor: number;
  private stale = 0;

  constructor(
    start: number,
    private readonly patience: number,
    private readonly clearGain: number,
  ) {
    this.best = start;
    this.anchor = start;
  }

  /** One epoch's held-out score (lower is better): whether it is the best so far, and whether to stop. */
  observe(score: number): { best: boolean; stop: boolean } {
    const best = score < this.best;
    if (best) this.best = score;
    if (score < this.anchor * (1 - this.clearGain)) {
      this.anchor = score;
      this.stale = 0;
    } else {
      this.stale++;
    }
    return { best, stop: this.stale >= this.patience };
  }
}
