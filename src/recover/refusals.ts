/**
 * Why recovery left work undone or did it differently: tagged here, so callers group and decide by kind,
 * and rendered to the ledger's and the progress log's text in this one place.
 */

const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);

/** Why reconstruction left one layer as pruning left it. */
export type LayerSkip =
  /** the pruned layer cannot be paired with its dense layer row by row */
  | { kind: 'unpaired'; why: string }
  /** its refit would hold more than the refit bound */
  | { kind: 'memory'; bytes: number; prunedColumns: number; denseColumns: number; limitBytes: number }
  /** the work allowance: not enough left for its estimated capture and solve, even on fewer samples */
  | { kind: 'work'; estimate: { macs: number; samples: number; leftMacs: number } }
  /** the wall-clock safety stop (recovery-time-budget) had fired: the run was cut short */
  | { kind: 'time' };

/** billions of multiply-accumulates, as the `recovery-work` setting counts them */
export const gmac = (macs: number): string => (macs / 1e9 >= 10 ? (macs / 1e9).toFixed(0) : (macs / 1e9).toPrecision(2));

export function layerSkipText(s: LayerSkip): string {
  switch (s.kind) {
    case 'unpaired':
      return s.why;
    case 'memory':
      return `its refit needs about ${mb(s.bytes)} MB (Gram matrices of ${s.prunedColumns} x ${s.prunedColumns} and ${s.denseColumns} x ${s.prunedColumns} columns), over the ${mb(s.limitBytes)} MB refit bound`;
    case 'work':
      return `estimated ${gmac(s.estimate.macs)} GMAC of work (capturing its input on ${s.estimate.samples} samples from both models, then the solve), more than the ${gmac(s.estimate.leftMacs)} GMAC left of the recovery work allowance, even on fewer samples`;
    case 'time':
      return 'cut short: the recovery-time-budget safety stop had fired';
  }
}

/** How the work allowance changed BatchNorm re-estimation. */
export type BatchNormBound =
  /** not even one pass over the calibration set fits: nothing was re-estimated */
  | { kind: 'work'; passMacs: number; leftMacs: number }
  /** one pass per node does not fit: every node was measured in one pass */
  | { kind: 'one-pass'; nodes: number; sequentialMacs: number; leftMacs: number };

export function batchNormBoundText(b: BatchNormBound): string {
  switch (b.kind) {
    case 'work':
      return `one pass over the calibration set is about ${gmac(b.passMacs)} GMAC, more than the ${gmac(b.leftMacs)} GMAC left of the recovery work allowance`;
    case 'one-pass':
      return `statistics of all ${b.nodes} nodes measured in one pass (each before the earlier ones were updated): one pass per node would be about ${gmac(b.sequentialMacs)} GMAC, ${gmac(b.leftMacs)} GMAC were left of the recovery work allowance`;
  }
}

/** Why one distillation epoch cannot run within the bounds. */
export type DistillUnfit =
  | { kind: 'memory'; bytes: number; parameters: number; batch: number; bytesPerSample: number; limitBytes: number }
  | { kind: 'work'; epochMacs: number; leftMacs: number };

export function distillUnfitText(u: DistillUnfit): string {
  switch (u.kind) {
    case 'memory':
      return `a training step needs about ${mb(u.bytes)} MB (${(u.parameters / 1e6).toFixed(1)}M parameters x 5, ${u.batch} samples x ${(u.bytesPerSample / 2 ** 20).toFixed(1)} MB of activations), over the ${mb(u.limitBytes)} MB bound`;
    case 'work':
      return `one epoch is about ${gmac(u.epochMacs)} GMAC (5.6 passes over the calibration set), more than the ${gmac(u.leftMacs)} GMAC left of the recovery work allowance`;
  }
}

/** Why temperature scaling was not fitted after recovery. */
export type TemperatureSkip =
  /** the run judges fidelity to the dense outputs: there is no classifier head whose logits a temperature divides, nor labels to fit it on */
  { kind: 'fidelity' };

export function temperatureSkipText(s: TemperatureSkip): string {
  switch (s.kind) {
    case 'fidelity':
      return 'the run judges fidelity to the dense outputs, with no classifier head to scale nor labels to fit a temperature on';
  }
}
