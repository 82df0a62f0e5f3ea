import type { RecoveryInfo, RecoveryStage, RecoveryStep, TemperatureInfo } from '../recover/runRecovery.js';

/**
 * What a ledger step is. Its public name (`dense`, `prune@2`, `recover:reconstruct`, `recover:round-1`,
 * `calibrate:temperature`, `ship`) is rendered from this by `stepName` and never parsed back: code that
 * needs to know what a step is reads its kind.
 */
export type StepKind =
  | { kind: 'dense' }
  /** `at`: the schedule step of a gradual run */
  | { kind: 'prune'; at?: number }
  | { kind: 'recover'; stage: 'reconstruct' | 'bn-stats' | 'distill' | 'command'; at?: number }
  /** an intermediate recovery round: its prune and recovery, one step */
  | { kind: 'recover'; stage: 'round'; round: number }
  | { kind: 'calibrate:temperature'; at?: number }
  /** an attempt of a latency target's correction loop that does not ship */
  | { kind: 'target'; attempt: number }
  /** a gradual run's chosen step, copied byte for byte to the shipped file */
  | { kind: 'ship' }
  /** post-training quantization of the last float step */
  | { kind: 'quantize'; scheme: 'int8' | 'dynamic' }
  /** `compare`: the two given models */
  | { kind: 'base' }
  | { kind: 'head' };

export function stepName(s: StepKind): string {
  switch (s.kind) {
    case 'dense':
    case 'ship':
    case 'base':
    case 'head':
      return s.kind;
    case 'prune':
      return `prune${at(s.at)}`;
    case 'recover':
      return s.stage === 'round' ? `recover:round-${s.round}` : `recover:${s.stage}${at(s.at)}`;
    case 'calibrate:temperature':
      return `calibrate:temperature${at(s.at)}`;
    case 'quantize':
      return `quantize:${s.scheme}`;
    case 'target':
      return `target:attempt-${s.attempt}`;
  }
}

const at = (n: number | undefined): string => (n === undefined ? '' : `@${n}`);

/** A step saved to disk and not yet measured: what it is, what was done, and what recovery it cost. */
export interface StepRecord {
  step: StepKind;
  description: string;
  artifact: string;
  recovery?: RecoveryInfo;
  temperature?: TemperatureInfo;
}

/** The ledger step of a recovery stage; `at` for the stages of a gradual run's schedule step. */
export function recoveryKind(stage: RecoveryStage, at?: number): StepKind {
  return stage === 'temperature' ? { kind: 'calibrate:temperature', at } : { kind: 'recover', stage, at };
}

export function recoveryRecord(r: RecoveryStep, at?: number): StepRecord {
  return { step: recoveryKind(r.stage, at), description: r.description, artifact: r.artifact, recovery: r.info, ...(r.temperature ? { temperature: r.temperature } : {}) };
}
