import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCK_NAME } from '../../src/io/lock.js';
import { OutputDir, STAGING_PREFIX } from '../../src/io/outputDir.js';
import { tempDir } from '../support/fixtures.js';

const WAIT = { waitMs: 1000 };

async function publish(dir: string, files: Record<string, string>): Promise<void> {
  const out = await OutputDir.open(dir, WAIT);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(out.staging, name)), { recursive: true });
    fs.writeFileSync(path.join(out.staging, name), text);
  }
  out.commit(['ledger.json']);
}

const tree = (dir: string): string[] => (fs.readdirSync(dir, { recursive: true }) as string[]).map((n) => n.split(path.sep).join('/')).sort();

describe('OutputDir', () => {
  it('a folder published again replaces the earlier one whole, leaving no lock or staging behind', async () => {
    const dir = tempDir();
    await publish(dir, { 'steps/01-prune.onnx': 'a', 'steps/02-reconstruct.onnx': 'b', 'm.pruned.onnx': 'b', 'ledger.json': '1' });
    await publish(dir, { 'steps/01-prune.onnx': 'c', 'm.pruned.onnx': 'c', 'ledger.json': '2' });
    expect(tree(dir)).toEqual(['ledger.json', 'm.pruned.onnx', 'steps', 'steps/01-prune.onnx']);
    expect(fs.readFileSync(path.join(dir, 'steps/01-prune.onnx'), 'utf8')).toBe('c');
    expect(fs.readFileSync(path.join(dir, 'ledger.json'), 'utf8')).toBe('2');
    expect(fs.readdirSync(dir).filter((n) => n === LOCK_NAME || n.startsWith(STAGING_PREFIX))).toEqual([]);
  });

  it('a file and a folder of the same name replace each other', async () => {
    const dir = tempDir();
    await publish(dir, { steps: 'a file' });
    await publish(dir, { 'steps/x.onnx': 'x' });
    expect(tree(dir)).toEqual(['steps', 'steps/x.onnx']);
    await publish(dir, { steps: 'a file again' });
    expect(fs.readFileSync(path.join(dir, 'steps'), 'utf8')).toBe('a file again');
  });
});
