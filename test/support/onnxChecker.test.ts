import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture, tempDir } from './fixtures.js';
import { onnxCheck } from './onnxChecker.js';

const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('onnxCheck, the reference validator of the tests', () => {
  it('leaves the checked file byte for byte as it was (a path-based full check would write inferred shapes into it)', () => {
    // this fixture carries no value_info: onnx.checker.check_model(path, full_check=True) rewrites it
    const file = path.join(tempDir(), 'vit-tiny.onnx');
    fs.copyFileSync(fixture('structured/vit-tiny.onnx'), file);
    const before = sha256(file);
    onnxCheck(file);
    expect(sha256(file)).toBe(before);
  });

  it('rejects a model the checker finds invalid, with its message', () => {
    const file = path.join(tempDir(), 'cut.onnx');
    const bytes = fs.readFileSync(fixture('mlp.onnx'));
    fs.writeFileSync(file, bytes.subarray(0, bytes.length >> 1));
    expect(() => onnxCheck(file)).toThrow(/Error/);
  });
});
