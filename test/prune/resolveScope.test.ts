import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type Config } from '../../src/config/schema.js';
import { resolveScope } from '../../src/prune/resolveScope.js';

const base = (over: Partial<Config> = {}): Config => ({ ...DEFAULT_CONFIG, method: 'structured', sparsity: 0.3, ...over });
const labelled = { labelled: true };

describe('resolveScope', () => {
  it('the default is auto', () => {
    expect(DEFAULT_CONFIG.scope).toBe('auto');
  });

  it('auto: structured oneshot with labelled calibration data ranks loss per MAC saved', () => {
    const r = resolveScope(base(), labelled);
    expect(r.scope).toBe('sensitivity-macs');
    expect(r.reason).toMatch(/^scope auto -> sensitivity-macs/);
  });

  it('auto: unstructured oneshot with labelled calibration data allocates per layer from the curves, but recovery rounds keep global', () => {
    const u = base({ method: 'unstructured', sparsity: 0.5 });
    expect(resolveScope(u, labelled)).toMatchObject({ scope: 'sensitivity', reason: expect.stringMatching(/^scope auto -> sensitivity: unstructured/) });
    expect(resolveScope(u, labelled, 4)).toMatchObject({ scope: 'global', reason: expect.stringMatching(/4 recovery rounds/) });
    expect(resolveScope(u, undefined).scope).toBe('global');
    expect(resolveScope(u, { labelled: false }).scope).toBe('global');
  });

  it.each([
    ['no calibration set', base(), undefined, /no calibration set/],
    ['calibration without labels', base(), { labelled: false }, /no labels/],
    ['hybrid', base({ method: 'hybrid' }), labelled, /hybrid/],
    ['N:M', base({ method: '2:4' }), labelled, /2:4/],
    ['gradual schedule', base({ schedule: 'gradual' }), labelled, /gradual/],
    ['a per-layer cap', base({ maxLayerSparsity: 0.5 }), labelled, /max-layer-sparsity/],
    ['channel rounding', base({ roundTo: 8 }), labelled, /round-to/],
    ['a target beyond the sensitivity cap', base({ sparsity: 0.97 }), labelled, /0.97/],
  ] as const)('auto falls back to global with %s', (_what, config, calib, why) => {
    const r = resolveScope(config, calib);
    expect(r.scope).toBe('global');
    expect(r.reason).toMatch(why);
  });

  it('an explicit scope is kept exactly, with no note', () => {
    for (const scope of ['global', 'layer', 'sensitivity', 'sensitivity-macs'] as const) {
      expect(resolveScope(base({ scope }), undefined)).toEqual({ scope, reason: '' });
      expect(resolveScope(base({ scope, method: 'unstructured' }), labelled)).toEqual({ scope, reason: '' });
    }
  });
});
