import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cacheDir, readCached, writeCached } from '../../src/io/measureCache.js';
import { tempDir } from '../support/fixtures.js';

const isNumbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');

describe('the measurement cache', () => {
  it('gives back what was stored under the same key, nothing under another', () => {
    const dir = tempDir();
    expect(writeCached(dir, 'key a', [1, 2, 3])).toBe(true);
    expect(readCached(dir, 'key a', isNumbers)).toEqual([1, 2, 3]);
    expect(readCached(dir, 'key b', isNumbers)).toBeUndefined();
  });

  it('ignores a corrupt file, one of the wrong shape, and a missing folder', () => {
    const dir = tempDir();
    writeCached(dir, 'k', [1]);
    const [file] = fs.readdirSync(dir);
    fs.writeFileSync(path.join(dir, file), '{"format": "prune-guard/measure-cache@1", "key": "k", "value": [1,');
    expect(readCached(dir, 'k', isNumbers)).toBeUndefined();
    writeCached(dir, 'k', ['not', 'numbers']);
    expect(readCached(dir, 'k', isNumbers)).toBeUndefined();
    expect(readCached(path.join(dir, 'missing'), 'k', isNumbers)).toBeUndefined();
  });

  it('lives outside any output folder: the override, else the OS cache folder', () => {
    expect(cacheDir({ PRUNE_GUARD_CACHE_DIR: '/x/y' })).toBe('/x/y');
    expect(cacheDir({ XDG_CACHE_HOME: '/c' })).toBe(path.join('/c', 'prune-guard'));
  });
});
