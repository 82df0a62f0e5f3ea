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
  /** the recovery time budget: used up before the layer, or not enough left for its estimated capture and solve */
  | { kind: 'time'; estimate?: { seconds: number; samples: number; leftSeconds: number } };

export function layerSkipText(s: LayerSkip): string {
  switch (s.kind) {
    case 'unpaired':
      return s.why;
    case 'memory':
      return `its refit needs about ${mb(s.bytes)} MB (Gram matrices of ${s.prunedColumns} x ${s.prunedColumns} and ${s.denseColumns} x ${s.prunedColumns} columns), over the ${mb(s.limitBytes)} MB refit bound`;
    case 'time':
      return s.estimate
        ? `estimated ${s.estimate.seconds.toFixed(0)} s (capturing its input on ${s.estimate.samples} samples from both models, then the solve), more than the ${s.estimate.leftSeconds.toFixed(0)} s left of recovery-time-budget, even on fewer samples`
        : 'recovery-time-budget reached';
  }
}

/** How the time left changed BatchNorm re-estimation. */
export type BatchNormBound =
  /** not even one pass over the calibration set fits: nothing was re-estimated */
  | { kind: 'time'; passSeconds: number; leftSeconds: number }
  /** one pass per node does not fit: every node was measured in one pass */
  | { kind: 'one-pass'; nodes: number; sequentialSeconds: number; leftSeconds: number };

export function batchNormBoundText(b: BatchNormBound): string {
  switch (b.kind) {
    case 'time':
      return `one pass over the calibration set takes about ${b.passSeconds.toFixed(0)} s, more than the ${Math.max(0, b.leftSeconds).toFixed(0)} s left of recovery-time-budget`;
    case 'one-pass':
      return `statistics of all ${b.nodes} nodes measured in one pass (each before the earlier ones were updated): one pass per node would take about ${b.sequentialSeconds.toFixed(0)} s, ${b.leftSeconds.toFixed(0)} s were left of recovery-time-budget`;
  }
}

/** Why one distillation epoch cannot run within the bounds. */
export type DistillUnfit =
  | { kind: 'memory'; bytes: number; parameters: number; batch: number; bytesPerSample: number; limitBytes: number }
  | { kind: 'time'; epochSeconds: number; passSeconds: number; leftSeconds: number };

export function distillUnfitText(u: DistillUnfit): string {
  switch (u.kind) {
    case 'memory':
      return `a training step needs about ${mb(u.bytes)} MB (${(u.parameters / 1e6).toFixed(1)}M parameters x 5, ${u.batch} samples x ${(u.bytesPerSample / 2 ** 20).toFixed(1)} MB of activations), over the ${mb(u.limitBytes)} MB bound`;
    case 'time':
      return `one epoch takes about ${u.epochSeconds.toFixed(0)} s (${(u.epochSeconds / u.passSeconds).toFixed(1)} passes of ${u.passSeconds.toFixed(1)} s over the calibration set), more than the ${Math.max(0, u.leftSeconds).toFixed(0)} s left of recovery-time-budget`;
  }
}
