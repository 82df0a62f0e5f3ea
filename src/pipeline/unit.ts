import * as fs from 'node:fs';
import * as path from 'node:path';
import { saveModel, setMetadata } from '../onnx/model.js';
import type { PruneOutcome } from '../prune/pruneModel.js';
import { runRecovery, type RecoveryRequest, type RecoveryStep, type TemperatureInfo } from '../recover/runRecovery.js';
import type { CutShort } from '../recover/work.js';
import { recoveryRecord, type StepRecord } from './steps.js';

/** One prune-and-recover: the unit every strategy (one shot, recovery rounds, a gradual schedule) is made of. */
export interface Unit {
  /** prunes the unit's input model: the dense input, or the model an earlier unit left */
  prune: () => Promise<PruneOutcome>;
  /** metadata stamped on the pruned model before it is saved; absent for a model that never ships (an intermediate round) */
  metadata?: (pruned: PruneOutcome) => Record<string, string>;
  /** where the pruned model is saved */
  pruneArtifact: string;
  /** recovery: everything but what pruning hands on (the model, its weights, structured references); stages saved under `recovery.stepsDir` */
  recovery: Omit<RecoveryRequest, 'pruned' | 'prunedArtifact' | 'structured' | 'denseWeights'>;
  /** the schedule step of a gradual run, for the steps' names (`prune@2`) */
  at?: number;
}

export interface UnitOutcome {
  pruned: PruneOutcome;
  /** the prune step, then each recovery stage kept, every one saved */
  steps: StepRecord[];
  /** recovery's kept stages with their calibration scores */
  recovered: RecoveryStep[];
  /** the temperature fitted for the unit's last model, when not baked into a step of its own */
  temperature?: TemperatureInfo;
  /** recovery work a memory or time bound skipped or changed, for the ledger's notes */
  notes: string[];
  /** the recovery-time-budget safety stop fired during this unit's recovery */
  cutShort?: CutShort;
  /** what a following unit starts from: the last kept stage before a baked temperature (the baked copy only ships) */
  chain: string;
}

/** Prune, stamp, save, recover: every kept stage saved and returned as a step record to measure. */
export async function pruneAndRecover(unit: Unit): Promise<UnitOutcome> {
  const pruned = await unit.prune();
  if (unit.metadata) setMetadata(pruned.model, unit.metadata(pruned));
  fs.mkdirSync(path.dirname(unit.pruneArtifact), { recursive: true });
  saveModel(pruned.model, unit.pruneArtifact);
  const recovery = await runRecovery({ ...unit.recovery, pruned: pruned.model, prunedArtifact: unit.pruneArtifact, denseWeights: pruned.denseWeights, structured: pruned.structured });
  return {
    pruned,
    steps: [{ step: { kind: 'prune', at: unit.at }, description: pruned.description, artifact: unit.pruneArtifact }, ...recovery.steps.map((r) => recoveryRecord(r, unit.at))],
    recovered: recovery.steps,
    ...(recovery.temperature ? { temperature: recovery.temperature } : {}),
    notes: recovery.notes,
    ...(recovery.cutShort ? { cutShort: recovery.cutShort } : {}),
    chain: recovery.steps.filter((r) => r.stage !== 'temperature').at(-1)?.artifact ?? unit.pruneArtifact,
  };
}
