/** One calibration-set measurement of a layer (or group) pruned alone. */
export interface SensitivityPoint {
  ratio: number;
  /** labels: mean NLL of the true label; against the dense model: mean KL(dense || pruned) */
  calib_nll: number;
  /** labels: top-1 accuracy; against the dense model: top-1 agreement with it */
  calib_accuracy: number;
}
export interface SensitivityLayer {
  /** initializer (unstructured) or dependency group (structured) */
  name: string;
  /** node consuming the weight (unstructured) */
  node?: string;
  /** weights (unstructured) or channels (structured) the global target counts */
  size: number;
  points: SensitivityPoint[];
  /** fraction of this layer's weights (or channels) the allocation prunes */
  allocated: number;
  /** `scope: sensitivity-macs`: MACs per sample one pruned channel of this group saves (measured) */
  macs_per_unit?: number;
  /** seconds spent measuring this layer's curve */
  seconds: number;
}
/** Sensitivity analysis behind a `scope: sensitivity` run. */
export interface SensitivityInfo {
  /** what a point prunes: weights of one tensor by magnitude, or channels of one dependency group */
  unit: 'weights' | 'channels';
  /** what calib_nll / calib_accuracy compare with: the labels, or the dense model's predictions */
  against: 'labels' | 'dense';
  /** calibration samples every point was measured on (a capped, evenly spaced subset) */
  calib_samples: number;
  ratios: number[];
  dense: { calib_nll: number; calib_accuracy: number };
  /** largest fraction any layer may be given */
  cap: number;
  /** sum over layers of the predicted loss increase at the allocated ratios */
  predicted_increase: number;
  /** what the allocation ranked: loss per unit (`sensitivity`) or loss per MAC saved (`sensitivity-macs`); absent before this field existed = loss */
  allocation?: 'loss' | 'loss-per-mac';
  seconds: number;
  layers: SensitivityLayer[];
}
