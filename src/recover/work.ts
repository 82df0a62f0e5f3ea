/**
 * Recovery's budget in work that does not depend on the machine's speed or load: multiply-accumulates
 * (MACs) of onnxruntime passes over calibration samples, with a refit's JavaScript solve counted at a
 * fixed price per floating-point operation. Every stage estimates its work from the model's MAC counts
 * before it starts and is given, or refused, work from the same allowance, so a busy runner computes
 * the same layers on the same samples for the same epochs as an idle one. Wall-clock time is only a
 * safety stop (`SafetyStop`): when it fires, the run says it was cut short.
 */

/**
 * MACs one float64 multiply-add of a refit's solve (JavaScript loops) counts as: onnxruntime's kernels run
 * about ten MACs in the time the solve's loops run one (2e9 against 2e8 per second on one core of the
 * 2-core reference machine). A fixed price, never measured at run time.
 */
export const SOLVE_MACS_PER_FLOP = 10;

/**
 * Passes over the calibration set recovery may spend on any model: enough for reconstruction (about one
 * pass per refit layer, both models), BatchNorm statistics and a full distillation (30 epochs of about
 * 5.6 passes each) on the fixtures and models of their size.
 */
export const RECOVERY_PASSES = 400;

/** One distillation epoch in passes over the calibration set (src/recover/bounds.ts: distillUnfit). */
export const DISTILL_EPOCH_PASSES = 1 + 0.2 + 0.8 * 4 + 0.2 + 1;

export interface WorkFacts {
  /** MACs of one sample through the model recovery starts from (shapes at batch 1) */
  macsPerSample: number;
  calibSamples: number;
  /** work of one refit solve of every layer recovery may refit (src/recover/reconstruct.ts: solveWorkOf); 0 when unknown */
  solveWork?: number;
}

/**
 * The recovery allowance in MACs, sized from the model and its calibration set before any stage runs:
 * `share` (a recovery round's part of the whole) of RECOVERY_PASSES passes over the set, plus one solve
 * of every layer (each round refits every layer), all capped at `share` of `capGmac` billion MACs (the
 * `recovery-work` setting, 0 = no cap). Pure: the same model, set and settings give the same allowance
 * on any machine.
 */
export function recoveryAllowance(facts: WorkFacts, capGmac: number, share = 1): number {
  const pass = Math.max(1, facts.macsPerSample) * Math.max(1, facts.calibSamples);
  const sized = RECOVERY_PASSES * pass * share + (facts.solveWork ?? 0);
  return capGmac > 0 ? Math.min(sized, capGmac * 1e9 * share) : sized;
}

/** Distillation epochs that fit `left` MACs: at most `maxEpochs`, 0 when not even one fits. */
export function distillEpochsThatFit(facts: WorkFacts, left: number, maxEpochs: number): number {
  const epoch = DISTILL_EPOCH_PASSES * Math.max(1, facts.macsPerSample) * Math.max(1, facts.calibSamples);
  return Math.max(0, Math.min(maxEpochs, Math.floor(left / epoch)));
}

/** The allowance as stages spend it: each charges the work it estimated before running it. */
export class WorkMeter {
  private spent = 0;
  constructor(readonly allowance: number) {}

  get left(): number {
    return Math.max(0, this.allowance - this.spent);
  }

  charge(macs: number): void {
    this.spent += macs;
  }
}

/** Monotonic milliseconds; injectable so tests can run recovery under a slow clock. */
export type Clock = () => number;

export const MONOTONIC: Clock = () => performance.now();

/**
 * The wall-clock safety stop (`recovery-time-budget`): never decides what a complete run computes, only
 * whether an overlong one stops early. One stop is shared by every round of a run.
 */
export interface SafetyStop {
  readonly limitSeconds: number;
  /** whether the limit has passed (always false without a limit) */
  passed(): boolean;
  /** seconds since the stop was armed, on its clock */
  elapsedSeconds(): number;
}

export function safetyStop(limitSeconds: number, clock: Clock = MONOTONIC): SafetyStop {
  const started = clock();
  const elapsedSeconds = (): number => (clock() - started) / 1000;
  return { limitSeconds, passed: () => limitSeconds > 0 && elapsedSeconds() > limitSeconds, elapsedSeconds };
}

/** Where the safety stop fired: the recovery stage that stopped early or was not started. */
export interface CutShort {
  stage: 'reconstruct' | 'bn-stats' | 'distill';
  limit_s: number;
}
