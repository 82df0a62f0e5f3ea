import { describe, expect, it } from 'vitest';
import { latency, pValue, sizeIn, sizeLike, sizeUnit, trimmed } from '../../src/ledger/format.js';

describe('number formats', () => {
  it('write p-values a reader compares with 0.05, never in exponent form', () => {
    expect([pValue(0), pValue(1e-7), pValue(0.00099), pValue(0.001), pValue(0.41)]).toEqual(['p<0.001', 'p<0.001', 'p<0.001', 'p=0.001', 'p=0.410']);
  });

  it('trim limits to the digits they were written with, never a float artefact', () => {
    expect([trimmed(0.5), trimmed(1), trimmed(0.022000000000000002 * 100), trimmed(-0.25), trimmed(-0.0001)]).toEqual(['0.5', '1', '2.2', '−0.25', '0']);
  });

  it('read a size limit back in the unit it was most likely written in', () => {
    expect(sizeUnit(2_000_000)).toEqual(['MB', 1e6]);
    expect(sizeUnit(1.5 * 2 ** 20)).toEqual(['MiB', 2 ** 20]);
    expect(sizeUnit(20e6)).toEqual(['MB', 1e6]);
    expect(sizeUnit(1536)).toEqual(['KiB', 1024]);
    expect(sizeUnit(512)).toEqual(['B', 1]);
    expect(sizeIn(2_080_000, ['MB', 1e6])).toBe('2.08 MB');
    expect(sizeIn(2_000_000, ['MB', 1e6], true)).toBe('2 MB');
    expect(sizeLike(2_000_000, ['kB', 1e3])).toBe('2.00 MB');
    expect(sizeLike(474_000, ['MiB', 2 ** 20])).toBe('462.89 KiB');
  });

  it('keep three decimals below 0.1 ms, so a tiny model\'s latency does not round away', () => {
    expect([latency(0.0245), latency(0.42), latency(12.345), latency(0)]).toEqual(['0.025', '0.42', '12.35', '0.00']);
  });
});
