import type { Config, ConcreteScope } from '../config/schema.js';
import { DEFAULT_CAP } from './sensitivity/allocateSparsity.js';

/** What `scope: auto` needs to know about the calibration set: whether there is one, and with labels. */
export interface CalibKind {
  labelled: boolean;
}

export interface ResolvedScope {
  scope: ConcreteScope;
  /** why, for the run's notes; empty when the scope was given explicitly */
  reason: string;
}

type ScopeInputs = Pick<Config, 'scope' | 'method' | 'schedule' | 'sparsity' | 'maxLayerSparsity' | 'roundTo'>;

/**
 * The scope a run prunes with. An explicit scope is kept as given. `auto` (the default): structured
 * oneshot pruning with a labelled calibration set measures each channel group and removes channels where
 * the calibration loss per MAC saved is smallest (`sensitivity-macs`: the structured-30% target on every
 * fixture and the real-world model at most of global's MAC saving, README "Scope auto"); everything else
 * keeps the global threshold: no calibration data or no labels (nothing measured to rank groups by),
 * unstructured (today's choice; a separate branch measures it), hybrid and N:M (no sensitivity path),
 * gradual (sensitivity curves are not scheduled), and runs that set a global-only option
 * (`--max-layer-sparsity`, `--round-to`) or a target beyond the sensitivity cap.
 */
export function resolveScope(config: ScopeInputs, calib: CalibKind | undefined): ResolvedScope {
  if (config.scope !== 'auto') return { scope: config.scope, reason: '' };
  const global = (why: string): ResolvedScope => ({ scope: 'global', reason: `scope auto -> global: ${why}` });
  if (config.method === 'unstructured') return global('unstructured pruning');
  if (config.method !== 'structured') return global(`--method ${config.method} has no sensitivity allocation`);
  if (!calib) return global('no calibration set to measure channel groups on');
  if (!calib.labelled) return global('the calibration set has no labels');
  if (config.schedule !== 'oneshot') return global(`--schedule ${config.schedule} (sensitivity curves are measured once, on the dense model)`);
  if (config.maxLayerSparsity < 1) return global('--max-layer-sparsity is a global-scope cap');
  if (config.roundTo > 1) return global('--round-to applies to the global allocation');
  if (config.sparsity > DEFAULT_CAP) return global(`--sparsity ${config.sparsity} is beyond the sensitivity cap ${DEFAULT_CAP}`);
  return { scope: 'sensitivity-macs', reason: 'scope auto -> sensitivity-macs: structured with a labelled calibration set (channels removed where calibration loss per MAC saved is smallest)' };
}
