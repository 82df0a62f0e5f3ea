import * as path from 'node:path';
import { readNpz, writeNpz } from '../../src/data/npz.js';
import { tempDir } from './fixtures.js';

/**
 * The first `count` samples of every array of an .npz, written to a temp file: a smaller calibration or
 * evaluation set where a test proves behaviour, not accuracy at scale, and the full set only costs time.
 */
export function firstSamples(file: string, count: number): string {
  const arrays = readNpz(file);
  for (const [name, a] of arrays) if (a.shape[0] < count) throw new Error(`${file}: '${name}' has ${a.shape[0]} samples, fewer than ${count}`);
  const out = path.join(tempDir('prune-guard-slice-'), `${path.basename(file, '.npz')}-${count}.npz`);
  writeNpz(
    out,
    Object.fromEntries(
      [...arrays].map(([name, a]) => {
        const per = a.shape.slice(1).reduce((x, y) => x * y, 1);
        return [name, { dtype: a.dtype, shape: [count, ...a.shape.slice(1)], data: a.data.slice(0, count * per) }];
      }),
    ),
  );
  return out;
}
