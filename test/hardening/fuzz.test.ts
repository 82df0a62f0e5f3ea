/**
 * Fuzzing the three readers of untrusted files: whatever the bytes, the result is a valid value or a
 * UserError (exit 2 in the CLI) — never another exception, a hang or a crash. Inputs are capped in size
 * and runs in number so the file stays fast.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { isUserError } from '../../src/errors.js';
import { parseConfig } from '../../src/config/loadConfig.js';
import { SETTINGS } from '../../src/config/schema.js';
import { readArrays, writeNpz } from '../../src/data/npz.js';
import { parseModel } from '../../src/onnx/model.js';
import { preflightModel } from '../../src/onnx/preflight.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { fixture, tempDir } from '../support/fixtures.js';

const RUNS = 250;
const dir = tempDir('prune-guard-fuzz-');

/** Runs `f`; a thrown value other than a UserError fails the property with its stack. */
function userErrorOrValue(f: () => unknown): boolean {
  try {
    f();
  } catch (e) {
    if (isUserError(e)) {
      // one line, like every UserError the CLI prints
      expect(e.message).not.toContain('\n');
      return true;
    }
    throw e;
  }
  return true;
}

interface Mutation {
  edits: { at: number; byte: number; nearStart: boolean }[];
  cut?: number;
  insert?: { at: number; bytes: Uint8Array };
}

/** Byte flips (half of them in the first 4 kB, where the graph structure lives), a truncation, an insertion. */
const mutation: fc.Arbitrary<Mutation> = fc.record(
  {
    edits: fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }), nearStart: fc.boolean() }), { maxLength: 12 }),
    cut: fc.nat(),
    insert: fc.record({ at: fc.nat(), bytes: fc.uint8Array({ maxLength: 64 }) }),
  },
  { requiredKeys: ['edits'] },
);

function mutate(original: Uint8Array, m: Mutation): Uint8Array {
  let b = Uint8Array.from(original);
  for (const e of m.edits) b[e.nearStart ? e.at % Math.min(4096, b.length) : e.at % b.length] = e.byte;
  if (m.insert) {
    const at = m.insert.at % (b.length + 1);
    const grown = new Uint8Array(b.length + m.insert.bytes.length);
    grown.set(b.subarray(0, at));
    grown.set(m.insert.bytes, at);
    grown.set(b.subarray(at), at + m.insert.bytes.length);
    b = grown;
  }
  if (m.cut !== undefined) b = b.subarray(0, m.cut % (b.length + 1));
  return b;
}

describe('fuzz: ONNX reader', () => {
  const real = new Uint8Array(fs.readFileSync(fixture('cnn-bn.onnx')));
  // what `run` does with a model right after reading it, before pruning
  let accepted = 0;
  const readAndCheck = (bytes: Uint8Array) =>
    userErrorOrValue(() => {
      const proto = parseModel(bytes, path.join(dir, 'fuzz.onnx'));
      preflightModel(proto, 'fuzz.onnx');
      modelInputs(proto, 'fuzz.onnx');
      accepted++;
    });

  it('mutated and truncated real model bytes', () => {
    fc.assert(fc.property(mutation, (m) => readAndCheck(mutate(real, m))), { numRuns: RUNS, seed: 7 });
    // some mutants must get through the reader, or the later checks were never exercised
    expect(accepted).toBeGreaterThan(0);
  });

  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), readAndCheck), { numRuns: RUNS, seed: 11 });
  });
});

describe('fuzz: config parser', () => {
  const keys = Object.keys(SETTINGS);
  const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(0.5, '2:4', 'unstructured', '1%', '2MB', [1, 32], { warmup: 1, runs: 3 }));
  const config = fc.dictionary(fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 12 })), value, { maxKeys: 6 });
  const nested = fc.record({ budgets: fc.dictionary(fc.constantFrom('accuracy-drop', 'min-speedup', 'max-size-bytes', 'p95-latency-ms', 'bogus'), value, { maxKeys: 3 }) });

  it('YAML of plausible settings, right or wrong', () => {
    fc.assert(
      fc.property(fc.oneof(config, nested), (raw) => userErrorOrValue(() => parseConfig(stringify(raw), '.prune-guard.yml'))),
      { numRuns: RUNS, seed: 3 },
    );
  });

  it('arbitrary text, including YAML syntax characters', () => {
    const yamlish = fc.string({ unit: fc.constantFrom(...'ab:- \n\t&*!|>{}[],#"\'%@`?0123456789.'.split('')), maxLength: 300 });
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), yamlish), (text) => userErrorOrValue(() => parseConfig(text, '.prune-guard.yml'))),
      { numRuns: RUNS, seed: 5 },
    );
  });
});

describe('fuzz: npz reader', () => {
  const small = path.join(dir, 'small.npz');
  writeNpz(small, {
    x: { dtype: 'float32', shape: [3, 1, 2, 2], data: Float32Array.from({ length: 12 }, (_, i) => i / 3) },
    y: { dtype: 'int64', shape: [3], data: BigInt64Array.from([0n, 1n, 2n]) },
  });
  const compressed = path.join(dir, 'compressed.npz');
  writeNpz(compressed, { x: { dtype: 'float64', shape: [4, 3], data: Float64Array.from({ length: 12 }, (_, i) => i) } }, { compress: true });
  const sources = [small, compressed, fixture('fmnist-calib.npz')].map((f) => new Uint8Array(fs.readFileSync(f)));

  const readBytes = (bytes: Uint8Array, ext: string) =>
    userErrorOrValue(() => {
      const f = path.join(dir, `fuzz${ext}`);
      fs.writeFileSync(f, bytes);
      readArrays(f);
    });

  let cleanReads = 0;
  const readsCleanly = (bytes: Uint8Array): boolean => {
    const f = path.join(dir, 'fuzz.npz');
    fs.writeFileSync(f, bytes);
    try {
      readArrays(f);
      return true;
    } catch (e) {
      if (isUserError(e)) return false;
      throw e;
    }
  };

  it('mutated and truncated real archives', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: sources.length - 1 }), mutation, (i, m) => {
        const bytes = mutate(sources[i], m);
        // count how often a mutant still reads, so the property is known to reach past the zip layer
        if (readsCleanly(bytes)) cleanReads++;
        return true;
      }),
      { numRuns: RUNS, seed: 13 },
    );
    expect(cleanReads).toBeGreaterThan(0);
  });

  it('random bytes as .npz and as .npy', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.constantFrom('.npz', '.npy'), (b, ext) => readBytes(b, ext)),
      { numRuns: RUNS, seed: 17 },
    );
  });

  it('.npy headers with hostile shapes and dtypes', () => {
    const header = fc.record({
      descr: fc.constantFrom('<f4', '<f8', '<i8', '|u1', '>f4', '<c8', '|O', 'x'),
      fortran: fc.constantFrom('False', 'True', 'maybe'),
      shape: fc.array(fc.oneof(fc.nat({ max: 4 }), fc.constant(2 ** 40), fc.constant(-1)), { maxLength: 5 }),
      body: fc.uint8Array({ maxLength: 256 }),
    });
    fc.assert(
      fc.property(header, ({ descr, fortran, shape, body }) => {
        const dict = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
        const pad = 64 - ((10 + dict.length + 1) % 64);
        const text = dict + ' '.repeat(pad % 64) + '\n';
        const head = Uint8Array.from([0x93, ...Buffer.from('NUMPY'), 1, 0, text.length & 0xff, text.length >> 8, ...Buffer.from(text)]);
        return readBytes(Uint8Array.from([...head, ...body]), '.npy');
      }),
      { numRuns: RUNS, seed: 19 },
    );
  });
});
