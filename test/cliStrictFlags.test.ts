import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli.js';
import { fixture, tempDir } from './support/fixtures.js';
import { inputHashes } from './support/outputSet.js';

// in process: every refusal here happens before any work, so main() returns before pruning or measuring
let stderr = '';
beforeEach(() => {
  stderr = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
});
afterEach(() => vi.restoreAllMocks());

const out = path.join(tempDir(), 'never');
const run = (...args: string[]) => main(['run', '--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--out', out, '--quiet', ...args], { stdout: () => undefined });

/** exit 2, one line naming the flag, nothing written */
async function refused(args: string[], pattern: RegExp): Promise<void> {
  stderr = '';
  const inputs = [fixture('mlp.onnx'), fixture('fmnist-test.npz'), ...args];
  const before = inputHashes(inputs);
  expect(await run(...args)).toBe(2);
  expect(inputHashes(inputs)).toEqual(before);
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(fs.existsSync(out)).toBe(false);
}

describe('strict flags', () => {
  it.each([['--sparsity'], ['--runs'], ['--method'], ['--recovery'], ['--recovery-command'], ['--batch-sizes'], ['--budget'], ['--config'], ['--calib'], ['--shift']])(
    'an empty %s (an unset CI variable) is refused, never read as 0 or as nothing',
    async (flag) => {
      await refused([flag, ''], new RegExp(`${flag} is empty \\(an unset variable\\?\\); give a value or leave the flag out`));
    },
  );

  it('refuses two shift sets with one name', async () => {
    await refused(['--shift', `rot=${fixture('fmnist-shift-rotate.npz')}`, '--shift', `rot=${fixture('fmnist-calib.npz')}`], /^prune-guard: error: --shift 'rot=.*' reuses the name 'rot' of --shift 'rot=.*'; give each shift set its own name$/);
  });

  it('refuses more threads than 4 per core of this machine, naming the limit', async () => {
    const most = 4 * os.availableParallelism();
    await refused(['--threads', String(most + 1)], new RegExp(`^prune-guard: error: --threads ${most + 1}: more than 4 per core on this machine's ${most / 4} cores; use at most ${most}, or 0 for all cores$`));
  });

  it('refuses batch sizes above 65536, saying the limit', async () => {
    await refused(['--batch-sizes', '1,65537'], /--batch-sizes must be distinct batch sizes from 1 to 65536 separated by commas, like 1,32 \(got '1,65537'; must be <= 65536\)/);
    await refused(['--eval-batch-size', '100000'], /--eval-batch-size must be a whole number from 1 to 65536 \(got '100000'; must be <= 65536\)/);
  });

  it('refuses a bare points budget that would be misread', async () => {
    await refused(['--budget', 'accuracy-drop=0.5'], /^prune-guard: error: --budget accuracy-drop=0\.5: 0\.5 would mean 50 points \(a fraction\); write 0\.5pt for half a point or 50pt if you mean it$/);
  });
});
