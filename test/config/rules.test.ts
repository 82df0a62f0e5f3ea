import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { brokenRules, checkConfig, checkMeasureConfig, SENSITIVITY_CAP, type CalibFact, type ResolvedConfig } from '../../src/config/rules.js';
import { DEFAULT_CONFIG, type Config } from '../../src/config/schema.js';
import { DEFAULT_CAP } from '../../src/prune/sensitivity/allocateSparsity.js';

// the pipeline resolves scope auto before the rules run; unstructured oneshot without calib resolves to global
const cfg = (over: Partial<ResolvedConfig> = {}): ResolvedConfig => ({ ...DEFAULT_CONFIG, scope: 'global', ...over });
const broken = (over: Partial<ResolvedConfig>, calib: CalibFact = 'labelled', cores = 2) => brokenRules(cfg(over), { calib, cores });

/** Each rule: a config and inputs that break it, the message (exactly as before the rules moved here), and a neighbour that keeps it. */
const RULES: [string, Partial<ResolvedConfig>, CalibFact, string, Partial<ResolvedConfig>, CalibFact][] = [
  ['threads above 4 per core', { latency: { ...DEFAULT_CONFIG.latency, threads: 9 } }, 'labelled', "--threads 9: more than 4 per core on this machine's 2 cores; use at most 8, or 0 for all cores", { latency: { ...DEFAULT_CONFIG.latency, threads: 8 } }, 'labelled'],
  ['reconstruct without calib', { recovery: 'reconstruct' }, 'none', '--recovery reconstruct: needs a calibration set for the layer inputs reconstruction refits to; pass --calib calib.npz (a few hundred training-like samples, with y to judge steps)', { recovery: 'reconstruct' }, 'unlabelled'],
  ['distill without calib', { recovery: 'distill' }, 'none', '--recovery distill: needs a calibration set for the samples distillation trains on; pass --calib calib.npz (a few hundred training-like samples, with y to judge steps)', { recovery: 'auto' }, 'none'],
  ['command without a command', { recovery: 'command' }, 'none', '--recovery command: no command given; pass --recovery-command "python finetune.py" (or recovery-command in the config file)', { recovery: 'command', recoveryCommand: 'true' }, 'none'],
  ['bake-temperature without labels', { bakeTemperature: true, recovery: 'none' }, 'unlabelled', '--bake-temperature: needs a labelled calibration set to fit the temperature on; pass --calib calib.npz with x and y', { bakeTemperature: true, recovery: 'none' }, 'labelled'],
  ['sensitivity without calib', { scope: 'sensitivity' }, 'none', '--scope sensitivity: needs a calibration set to measure each layer on; pass --calib calib.npz (labels optional) or use --scope global', { scope: 'sensitivity' }, 'unlabelled'],
  ['sensitivity-macs unstructured', { scope: 'sensitivity-macs' }, 'labelled', '--scope sensitivity-macs: ranks channel groups by the MACs their removal saves, so it needs --method structured, not unstructured; use --scope sensitivity or global', { scope: 'sensitivity-macs', method: 'structured' }, 'labelled'],
  ['sensitivity with N:M', { scope: 'sensitivity', method: '2:4' }, 'labelled', '--scope sensitivity: works with --method unstructured or structured, not 2:4; use one of those or --scope global', { scope: 'sensitivity', method: 'structured' }, 'labelled'],
  ['sensitivity above its cap', { scope: 'sensitivity', sparsity: 0.97 }, 'labelled', '--sparsity 0.97: --scope sensitivity prunes no layer beyond 95%, so the target must be at most 0.95; lower --sparsity or use --scope global', { scope: 'sensitivity', sparsity: 0.95 }, 'labelled'],
  ['compare-sensitivity outside global', { roundsCompareSensitivity: true, scope: 'layer' }, 'labelled', '--rounds-compare-sensitivity: compares global with sensitivity allocation, but --scope is layer; drop --scope or the flag', { roundsCompareSensitivity: true }, 'labelled'],
  ['compare-sensitivity above the cap', { roundsCompareSensitivity: true, sparsity: 0.97 }, 'labelled', '--rounds-compare-sensitivity: sensitivity allocation prunes no layer beyond 95%, so --sparsity 0.97 cannot be compared; lower --sparsity to 0.95 or drop the flag', { roundsCompareSensitivity: true, sparsity: 0.9 }, 'labelled'],
  ['compare-sensitivity without labels', { roundsCompareSensitivity: true }, 'unlabelled', '--rounds-compare-sensitivity: picks by calibration NLL, so it needs a labelled calibration set; pass --calib calib.npz with x and y', { roundsCompareSensitivity: false }, 'unlabelled'],
  ['rounds with structured', { recoveryRounds: 3, method: 'structured' }, 'labelled', '--recovery-rounds 3: rounds prune unstructured weights again after each recovery, not --method structured; use --method unstructured or --recovery-rounds 1', { recoveryRounds: 0, method: 'structured' }, 'labelled'],
  ['rounds with gradual', { recoveryRounds: 3, schedule: 'gradual' }, 'labelled', '--recovery-rounds 3: --schedule gradual already recovers after each step; use one of them', { recoveryRounds: 1, schedule: 'gradual' }, 'labelled'],
  ['rounds with a layer cap', { recoveryRounds: 3, maxLayerSparsity: 0.9 }, 'labelled', '--recovery-rounds 3: rounds prune by one global threshold without a per-layer cap; drop --max-layer-sparsity or use --recovery-rounds 1', { recoveryRounds: 3 }, 'labelled'],
  ['rounds with sparsegpt', { recoveryRounds: 3, criterion: 'sparsegpt' }, 'labelled', '--recovery-rounds 3: --criterion sparsegpt re-chooses zeros at each reconstruction, so a later round would revive earlier zeros; use --criterion l1', { recoveryRounds: 1, criterion: 'sparsegpt' }, 'labelled'],
  ['rounds without calib', { recoveryRounds: 3 }, 'none', '--recovery-rounds 3: each round recovers on the calibration set; pass --calib calib.npz and --recovery auto, reconstruct or distill', { recoveryRounds: 0 }, 'none'],
  ['rounds without recovery', { recoveryRounds: 3, recovery: 'none' }, 'labelled', '--recovery-rounds 3: each round recovers on the calibration set; pass --calib calib.npz and --recovery auto, reconstruct or distill', { recoveryRounds: 3, recovery: 'distill' }, 'labelled'],
  ['gradual N:M', { schedule: 'gradual', method: '2:4' }, 'labelled', '--schedule gradual: --method 2:4 has one fixed sparsity (1 - N/M), so there is nothing to schedule; use --schedule oneshot', { schedule: 'oneshot', method: '2:4' }, 'labelled'],
  ['gradual sparsegpt', { schedule: 'gradual', criterion: 'sparsegpt' }, 'labelled', '--schedule gradual: --criterion sparsegpt re-chooses the mask at every reconstruction, so a later step would revive earlier zeros; use --schedule oneshot with sparsegpt, or --criterion l1', { schedule: 'oneshot', criterion: 'sparsegpt' }, 'labelled'],
  ['gradual structured sensitivity', { schedule: 'gradual', scope: 'sensitivity', method: 'structured' }, 'labelled', '--schedule gradual: --scope sensitivity is scheduled for --method unstructured only (curves measured once on the dense model), and sensitivity-macs not at all; use --scope global or layer with gradual, or --schedule oneshot with sensitivity', { schedule: 'gradual', scope: 'sensitivity' }, 'labelled'],
  ['sparsegpt structured', { criterion: 'sparsegpt', method: 'structured' }, 'labelled', '--criterion sparsegpt: re-chooses unstructured masks during reconstruction, not --method structured; use --method unstructured, or --criterion l1', { criterion: 'bn-scale', method: 'structured' }, 'labelled'],
  ['sparsegpt without reconstruction', { criterion: 'sparsegpt', recovery: 'distill' }, 'labelled', '--criterion sparsegpt: the mask is chosen by the reconstruction step, but --recovery is distill; use --recovery reconstruct or auto', { criterion: 'sparsegpt', recovery: 'reconstruct' }, 'labelled'],
  ['sparsegpt without calib', { criterion: 'sparsegpt' }, 'none', '--criterion sparsegpt: needs calibration data to choose the mask on; pass --calib calib.npz', { criterion: 'sparsegpt' }, 'unlabelled'],
  ['a layer cap outside global', { maxLayerSparsity: 0.9, scope: 'layer' }, 'labelled', "--max-layer-sparsity: caps what one global threshold takes from a layer, but --scope layer sets every layer's ratio itself; use --scope global or drop the cap", { maxLayerSparsity: 0.9 }, 'labelled'],
  ['a layer cap below the target', { maxLayerSparsity: 0.5, sparsity: 0.8 }, 'labelled', '--max-layer-sparsity 0.5: below --sparsity 0.8, so no allocation reaches the target; raise it to at least 0.8', { maxLayerSparsity: 0.8, sparsity: 0.8 }, 'labelled'],
  ['static INT8 without calib', { quantize: 'int8' }, 'none', '--quantize int8: needs calibration data to measure activation ranges; pass --calib calib.npz (512 samples are plenty), or use --quantize dynamic for MatMul layers', { quantize: 'dynamic' }, 'none'],
  ['quantize with gradual', { quantize: 'int8', schedule: 'gradual' }, 'unlabelled', '--quantize int8: not combined with --schedule gradual; quantize the shipped step in a one-shot run (--schedule oneshot)', { quantize: 'int8' }, 'unlabelled'],
  ['both latency targets', { method: 'structured', targetSpeedup: 2, targetLatencyMs: 5 }, 'none', '--target-speedup and --target-latency-ms: give one latency target, not both', { method: 'structured', targetSpeedup: 2 }, 'none'],
  ['latency target unstructured', { targetSpeedup: 2 }, 'none', '--target-speedup: channels are allocated for speed only by --method structured (unstructured and N:M zeros do not run faster on CPU), not unstructured; add --method structured', { method: 'structured', targetSpeedup: 2 }, 'none'],
  ['latency target gradual', { method: 'structured', targetLatencyMs: 5, schedule: 'gradual' }, 'none', '--target-latency-ms: allocates one structured prune; drop --schedule gradual and --recovery-rounds', { method: 'structured', targetLatencyMs: 5 }, 'none'],
  ['latency target with quantize', { method: 'structured', targetSpeedup: 2, quantize: 'int8' }, 'labelled', '--target-speedup: is met by the structured prune alone; drop --quantize, or quantize in a run without a latency target', { method: 'structured', targetSpeedup: 2 }, 'labelled'],
];

describe('cross-field rules', () => {
  it.each(RULES)('%s: refused with its own message, and its neighbour is not', (_, bad, calib, message, good, goodCalib) => {
    expect(broken(bad, calib)).toEqual([message]);
    expect(broken(good, goodCalib)).toEqual([]);
  });

  it('the default config breaks no rule, with or without a calibration set', () => {
    for (const calib of ['none', 'unlabelled', 'labelled'] as const) expect(broken({}, calib)).toEqual([]);
  });

  it('checkConfig throws the first broken rule as one UserError line, in the order the run used to check them', () => {
    // recovery before sensitivity before rounds before schedule before criterion before the layer cap
    const config = cfg({ recovery: 'distill', scope: 'sensitivity', recoveryRounds: 3, method: 'structured', schedule: 'gradual', maxLayerSparsity: 0.5 });
    const all = brokenRules(config, { calib: 'none', cores: 2 });
    // rounds: not structured, not gradual, no cap, and no calibration set; the cap 0.5 is not below the target 0.5
    expect(all.map((m) => m.split(':')[0])).toEqual(['--recovery distill', '--scope sensitivity', ...Array(4).fill('--recovery-rounds 3'), '--schedule gradual', '--max-layer-sparsity']);
    expect(() => checkConfig(config, { calib: 'none', cores: 2 })).toThrow(new UserError(all[0]));
  });

  it('checks threads against this machine when no core count is given', () => {
    expect(() => checkMeasureConfig({ ...DEFAULT_CONFIG, latency: { ...DEFAULT_CONFIG.latency, threads: 100_000 } } as Config)).toThrow(/^--threads 100000: more than 4 per core/);
    expect(() => checkMeasureConfig({ ...DEFAULT_CONFIG, latency: { ...DEFAULT_CONFIG.latency, threads: 4 } } as Config, { cores: 1 })).not.toThrow();
    expect(() => checkMeasureConfig({ ...DEFAULT_CONFIG, latency: { ...DEFAULT_CONFIG.latency, threads: 5 } } as Config, { cores: 1 })).toThrow(UserError);
  });

  it('the sensitivity cap the rules refuse above is the one allocation uses', () => {
    expect(DEFAULT_CAP).toBe(SENSITIVITY_CAP);
  });
});
