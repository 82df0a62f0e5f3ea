import type { Ledger, ModelLedger } from './types.js';

/**
 * What `prune-guard verify` compares between a recorded ledger and its re-run: the pruned file's hash,
 * the settings' hash, the versions, and every quality number (accuracy, per-class accuracy, ECE, NLL,
 * agreement, sparsity, non-zero parameters, calibration scores and temperature of each step, the kept
 * steps themselves, and whether the run was cut short). Timings and latency are not compared: they
 * depend on the machine by nature. One line per difference; none means the run reproduced.
 */
export function reproduceDifferences(recorded: Ledger, fresh: Ledger): string[] {
  const out: string[] = [];
  const a = recorded.reproduce;
  const b = fresh.reproduce;
  if (!a || !b) return ['reproducibility record: missing in the ' + (!a ? 'recorded ledger' : 're-run')];
  if (a.pruned_sha256 !== b.pruned_sha256) out.push(`pruned model sha256: recorded ${short(a.pruned_sha256)}, now ${short(b.pruned_sha256)}`);
  if (a.config_sha256 !== b.config_sha256) out.push(`settings sha256: recorded ${short(a.config_sha256)}, now ${short(b.config_sha256)}`);
  for (const k of ['prune_guard', 'onnxruntime', 'node'] as const) {
    if (a.versions[k] !== b.versions[k]) out.push(`${k} version: recorded ${a.versions[k]}, now ${b.versions[k]}`);
  }
  if (a.quality_threads !== b.quality_threads) out.push(`quality threads: recorded ${a.quality_threads}, now ${b.quality_threads}`);
  if (recorded.models.length !== fresh.models.length) out.push(`models: recorded ${recorded.models.length}, now ${fresh.models.length}`);
  recorded.models.forEach((m, i) => {
    if (fresh.models[i]) out.push(...modelDifferences(m, fresh.models[i]));
  });
  return out;
}

const short = (h: string | null): string => (h === null ? 'none' : h.slice(0, 16));

/** Each step's quality numbers by name, in ledger order. */
export function qualityNumbers(m: ModelLedger): Record<string, unknown> {
  const numbers: Record<string, unknown> = { steps: m.steps.map((s) => s.name).join(', '), cut_short: m.cut_short ?? null };
  for (const s of m.steps) {
    const at = (field: string) => `steps[${s.name}].${field}`;
    numbers[at('accuracy')] = s.accuracy;
    numbers[at('per_class')] = s.per_class;
    numbers[at('ece')] = s.ece;
    numbers[at('nll')] = s.nll;
    numbers[at('agreement')] = s.agreement;
    numbers[at('sparsity')] = s.sparsity;
    numbers[at('nonzero_params')] = s.nonzero_params;
    if (s.recovery) {
      numbers[at('recovery.calib_accuracy_after')] = s.recovery.calib_accuracy_after ?? null;
      numbers[at('recovery.calib_nll_after')] = s.recovery.calib_nll_after ?? null;
      // without labels recovery is judged against the dense model instead
      if (s.recovery.calib_kl_after !== undefined) numbers[at('recovery.calib_kl_after')] = s.recovery.calib_kl_after;
      if (s.recovery.calib_output_error_after !== undefined) numbers[at('recovery.calib_output_error_after')] = s.recovery.calib_output_error_after;
    }
    if (s.temperature) numbers[at('temperature')] = s.temperature.value;
    if (s.shift_accuracy) numbers[at('shift_accuracy')] = s.shift_accuracy;
  }
  return numbers;
}

function modelDifferences(recorded: ModelLedger, fresh: ModelLedger): string[] {
  const a = qualityNumbers(recorded);
  const b = qualityNumbers(fresh);
  const out: string[] = [];
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = JSON.stringify(a[key] ?? null);
    const y = JSON.stringify(b[key] ?? null);
    if (x !== y) out.push(`${recorded.model}: ${key}: recorded ${clip(x)}, now ${clip(y)}`);
  }
  return out;
}

const clip = (s: string): string => (s.length > 80 ? `${s.slice(0, 77)}...` : s);
