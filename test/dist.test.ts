import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './support/fixtures.js';
import { VERSION } from '../src/version.js';

function listFiles(dir: string, prefix = ''): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  ).sort();
}

describe('committed dist/', () => {
  it('is what `npm run build` makes from the current source (rebuild and commit dist/ when this fails)', () => {
    const fresh = tempDir('prune-guard-dist-');
    execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), fresh], { cwd: ROOT });
    const committed = path.join(ROOT, 'dist');
    expect(listFiles(committed)).toEqual(listFiles(fresh));
    for (const f of listFiles(fresh)) {
      const same = fs.readFileSync(path.join(fresh, f)).equals(fs.readFileSync(path.join(committed, f)));
      expect(same, `dist/${f} is stale: run npm run build and commit dist/`).toBe(true);
    }
  });

  it('src/version.ts matches package.json', () => {
    expect(VERSION).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });
});
