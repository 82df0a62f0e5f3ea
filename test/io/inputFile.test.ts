import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loadConfig.js';
import { readNpz } from '../../src/data/npz.js';
import { isUserError } from '../../src/errors.js';
import { readInputFile } from '../../src/io/inputFile.js';
import { loadModel } from '../../src/onnx/model.js';
import { fixture, tempDir } from '../support/fixtures.js';

const dir = tempDir('prune-guard-inputfile-');

function refusal(read: () => unknown): string {
  try {
    read();
  } catch (e) {
    expect(isUserError(e), String(e)).toBe(true);
    const message = (e as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    return message;
  }
  throw new Error('expected a refusal');
}

describe('input files are checked before a byte is read', () => {
  it('a FIFO as the model is refused at once instead of blocking', () => {
    const fifo = path.join(dir, 'model.onnx');
    execFileSync('mkfifo', [fifo]);
    expect(refusal(() => loadModel(fifo))).toMatch(/model\.onnx: is a named pipe \(FIFO\), not a regular file; pass the path of an \.onnx model/);
  });

  it('/dev/zero as the model is refused instead of growing without end', () => {
    expect(refusal(() => loadModel('/dev/zero'))).toMatch(/^\/dev\/zero: is a system file/);
  });

  it('a symlink to /dev/zero is refused by where it points', () => {
    const link = path.join(dir, 'zero.npz');
    fs.symlinkSync('/dev/zero', link);
    expect(refusal(() => readNpz(link))).toMatch(/zero\.npz: is a system file \(\/dev\/zero\)/);
  });

  it('a /proc file as data or config is refused', () => {
    expect(refusal(() => readNpz('/proc/self/status'))).toMatch(/status: is a system file.*\.npz or \.npy/);
    expect(refusal(() => loadConfig('/proc/self/environ'))).toMatch(/environ: is a system file/);
  });

  it('a folder and a missing file are named with the fix', () => {
    expect(refusal(() => loadModel(dir))).toMatch(/is a folder; pass the path of an \.onnx model/);
    expect(refusal(() => readNpz(path.join(dir, 'missing.npz')))).toMatch(/missing\.npz: file not found/);
  });

  it('a file larger than the memory it may take is refused by its size, unread', () => {
    const big = path.join(dir, 'big.onnx');
    fs.writeFileSync(big, Buffer.alloc(4096));
    expect(refusal(() => readInputFile(big, { expected: 'an .onnx model', maxBytes: 1024 }))).toMatch(/big\.onnx: is 0\.0 MiB, more than the 0\.0 MiB/);
  });

  it('a regular file is read whole and byte for byte', () => {
    const file = fixture('mlp.onnx');
    expect(readInputFile(file, { expected: 'an .onnx model' }).equals(fs.readFileSync(file))).toBe(true);
  });
});
