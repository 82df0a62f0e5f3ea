import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { DEFAULT_CONFIG } from '../../src/config/schema.js';
import { applyGiven, readText, SETTING_REFS, type SettingRef } from '../../src/config/sources.js';
import { parseShiftSets } from '../../src/config/shifts.js';

const ref = (path: string): SettingRef => SETTING_REFS.find((r) => r.path.join('.') === path)!;
const read = (path: string, text: string, subject = `--${path.split('.').at(-1)}`) => readText(ref(path), text, subject);

describe('reading a flag or input with its setting', () => {
  it('reads each kind of text into the file form', () => {
    expect(read('sparsity', '0.7')).toEqual({ value: 0.7 });
    expect(read('latency.runs', '5')).toEqual({ value: 5 });
    expect(read('batch-sizes', '8, 1')).toEqual({ value: [8, 1] });
    expect(read('method', '2:4')).toEqual({ value: '2:4' });
    expect(read('exclude', 'head/*')).toEqual({ value: 'head/*' });
    expect(read('corruptions', 'blur:2', '--corruption')).toEqual({ value: 'blur:2' });
  });

  it('refuses what the file would refuse, in the same words, with the text as given', () => {
    expect(read('sparsity', '1')).toEqual({ message: "--sparsity must be a fraction from 0 to below 1 like 0.5 (got '1'; must be < 1)" });
    expect(read('latency.runs', '2.5', 'input runs')).toEqual({ message: "input runs must be a whole number of 1 or more (got '2.5')" });
    expect(read('method', '4:2')).toEqual({ message: `--method N:M must have N smaller than M, like "2:4" (got '4:2')` });
    expect(read('corruptions', 'blur:9', '--corruption')).toEqual({
      message: "--corruption must be KIND:SEVERITY with KIND one of gaussian-noise, contrast, brightness, blur, feature-noise, feature-dropout and SEVERITY 1-5 (got 'blur:9')",
    });
  });

  it('never reads text that is not a number as one: empty, hex, or words', () => {
    for (const text of ['', '  ', '0x10', 'Infinity', '1,5', 'half']) {
      const r = read('sparsity', text);
      expect('message' in r, JSON.stringify(text)).toBe(true);
    }
    expect(read('sparsity', '')).toEqual({ message: '--sparsity is empty (an unset variable?); give a value or leave it out' });
  });

  it('says a list is written with commas, and gives the bound broken', () => {
    expect(read('batch-sizes', '1,100000')).toEqual({ message: "--batch-sizes must be distinct batch sizes from 1 to 65536 separated by commas, like 1,32 (got '1,100000'; must be <= 65536)" });
    expect(read('batch-sizes', '1,1')).toEqual({ message: "--batch-sizes must be distinct batch sizes from 1 to 65536 separated by commas, like 1,32 (got '1,1')" });
    expect(read('eval-batch-size', '70000')).toEqual({ message: "--eval-batch-size must be a whole number from 1 to 65536 (got '70000'; must be <= 65536)" });
  });
});

describe('given values over the config', () => {
  const base = { ...DEFAULT_CONFIG, exclude: ['*.bias'], corruptions: ['blur:1'] };

  it('replaces single values, sets one latency field, appends to exclude and unites corruptions', () => {
    const config = applyGiven(
      base,
      [
        { ref: ref('sparsity'), value: 0.8 },
        { ref: ref('latency.threads'), value: 2 },
        { ref: ref('exclude'), value: 'head/*' },
        { ref: ref('corruptions'), value: 'blur:1' },
        { ref: ref('corruptions'), value: 'contrast:2' },
        { ref: ref('strict'), value: true },
      ],
      'command-line flags',
    );
    expect(config).toMatchObject({ sparsity: 0.8, exclude: ['*.bias', 'head/*'], corruptions: ['blur:1', 'contrast:2'], strict: true });
    expect(config.latency).toEqual({ ...DEFAULT_CONFIG.latency, threads: 2 });
    expect(base.exclude).toEqual(['*.bias']);
  });

  it('gives the config unchanged when nothing is given', () => {
    expect(applyGiven(DEFAULT_CONFIG, [], 'command-line flags')).toEqual(DEFAULT_CONFIG);
  });

  it('checks the result and names the source', () => {
    expect(() => applyGiven(DEFAULT_CONFIG, [{ ref: ref('sparsity'), value: 2 }], 'action inputs')).toThrow(
      new UserError("action inputs: 'sparsity' must be a fraction from 0 to below 1 like 0.5 (got 2; must be < 1)"),
    );
  });
});

describe('shift sets', () => {
  const subject = (e: string) => `--shift '${e}'`;

  it('reads NAME=path and refuses a name given twice or a missing part', () => {
    expect(parseShiftSets(['rotated=r.npz', ' noisy = n.npz '], subject)).toEqual([{ name: 'rotated', path: 'r.npz' }, { name: 'noisy', path: 'n.npz' }]);
    expect(() => parseShiftSets(['a=x.npz', 'b=y.npz', 'a=z.npz'], subject)).toThrow(new UserError("--shift 'a=z.npz' reuses the name 'a' of --shift 'a=x.npz'; give each shift set its own name"));
    for (const bad of ['rotated', '=r.npz', 'rotated=']) expect(() => parseShiftSets([bad], subject)).toThrow(`--shift '${bad}' must be NAME=path`);
  });
});
