import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cachedTiming, timingKey } from '../../src/measure/timingCache.js';
import { tempDir } from '../support/fixtures.js';

describe('timings kept between runs on one machine', () => {
  it('the key follows the contents of the timed files and the settings, not their names', () => {
    const dir = tempDir();
    const a = path.join(dir, 'a.onnx');
    const b = path.join(dir, 'b.onnx');
    fs.writeFileSync(a, 'model one');
    fs.writeFileSync(b, 'model one');
    expect(timingKey('t', [a], { batch: 1 })).toBe(timingKey('t', [b], { batch: 1 }));
    expect(timingKey('t', [a], { batch: 1 })).not.toBe(timingKey('t', [a], { batch: 32 }));
    expect(timingKey('t', [a], { batch: 1 })).not.toBe(timingKey('other', [a], { batch: 1 }));
    fs.writeFileSync(b, 'model two');
    expect(timingKey('t', [a], { batch: 1 })).not.toBe(timingKey('t', [b], { batch: 1 }));
  });

  it('measures once, then reads the same numbers back; a value the check rejects is measured again', async () => {
    const before = process.env.PRUNE_GUARD_CACHE_DIR;
    process.env.PRUNE_GUARD_CACHE_DIR = tempDir();
    try {
      let runs = 0;
      const measure = async () => [++runs, 2];
      const positive = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number' && x > 0);
      expect(await cachedTiming('k', positive, measure)).toEqual({ value: [1, 2], cached: false });
      expect(await cachedTiming('k', positive, measure)).toEqual({ value: [1, 2], cached: true });
      const three = (v: unknown): v is number[] => positive(v) && v.length === 3;
      expect(await cachedTiming('k', three, measure)).toEqual({ value: [2, 2], cached: false });
      expect(runs).toBe(2);
    } finally {
      if (before === undefined) delete process.env.PRUNE_GUARD_CACHE_DIR;
      else process.env.PRUNE_GUARD_CACHE_DIR = before;
    }
  });
});
