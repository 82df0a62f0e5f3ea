import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture, present, REAL_WORLD } from './fixtures.js';

describe('present: a needed file that is missing fails the test, never skips it', () => {
  it('returns a file that exists', () => {
    expect(present(fixture('mlp.onnx'))).toBe(fixture('mlp.onnx'));
  });

  it('names where the shared real-world material was looked for, and that CI must provide it', () => {
    expect(() => present(path.join(REAL_WORLD, 'absent.onnx'))).toThrow(/shared real-world material missing: no absent\.onnx in .*shared\/real-world\/mnist-cnn-pytorch.*CI must provide \.\.\/shared/);
  });

  it('names any other missing input', () => {
    expect(() => present(fixture('absent.npz'))).toThrow(`test input missing: ${fixture('absent.npz')}`);
  });
});
