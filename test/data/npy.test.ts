import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { allocTypedArray, encodeNpy, NPY_DTYPES, parseNpy, type NdArray, type NpyDtype } from '../../src/data/npy.js';
import { npyBytes, runPython, tempDir } from './helpers.js';

/** Values that stress each dtype: extremes, sign, NaN/-0 for floats. */
function sample(dtype: NpyDtype): NdArray {
  const shape = [2, 3];
  const data = allocTypedArray(dtype, 6);
  const values: Record<NpyDtype, (number | bigint)[]> = {
    float32: [0, -0, 1.5, -3.25e30, NaN, Infinity],
    float64: [Math.PI, -0, Number.MAX_VALUE, Number.MIN_VALUE, NaN, -Infinity],
    float16: [0x3c00, 0x8000, 0x7bff, 0x0001, 0x7e00, 0xfc00],
    int64: [0n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 123456789012345n, 7n],
    int32: [0, -1, 2 ** 31 - 1, -(2 ** 31), 42, 7],
    int16: [0, -1, 32767, -32768, 42, 7],
    int8: [0, -1, 127, -128, 42, 7],
    uint8: [0, 1, 255, 128, 42, 7],
    uint16: [0, 1, 65535, 32768, 42, 7],
    uint32: [0, 1, 2 ** 32 - 1, 2 ** 31, 42, 7],
    uint64: [0n, 1n, 2n ** 64n - 1n, 2n ** 63n, 42n, 7n],
    bool: [0, 1, 1, 0, 0, 1],
  };
  values[dtype].forEach((v, i) => ((data as unknown as (number | bigint)[])[i] = v));
  return { dtype, shape, data };
}

function expectUserError(fn: () => unknown, ...fragments: (string | RegExp)[]): UserError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(UserError);
  const msg = (caught as UserError).message;
  expect(msg).not.toContain('\n');
  for (const f of fragments) expect(msg).toMatch(f);
  return caught as UserError;
}

const f32Bytes = (values: number[]): Uint8Array => new Uint8Array(new Float32Array(values).buffer);

describe('encodeNpy / parseNpy round trip', () => {
  it.each(NPY_DTYPES)('preserves dtype, shape and every bit of %s data', (dtype) => {
    const arr = sample(dtype);
    const back = parseNpy(encodeNpy(arr), 'mem.npy');
    expect(back.dtype).toBe(dtype);
    expect(back.shape).toEqual([2, 3]);
    expect(back.data.constructor).toBe(arr.data.constructor);
    // compare bytes so NaN and -0 count as equal only when they really are
    expect(new Uint8Array(back.data.buffer, back.data.byteOffset, back.data.byteLength)).toEqual(
      new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength),
    );
  });

  it('round-trips 0-d, 1-d and zero-size shapes', () => {
    for (const shape of [[], [5], [0, 4], [3, 0]]) {
      const n = shape.reduce((a, d) => a * d, 1);
      const arr: NdArray = { dtype: 'int32', shape, data: Int32Array.from({ length: n }, (_, i) => i * 3) };
      const back = parseNpy(encodeNpy(arr), 'mem.npy');
      expect(back.shape).toEqual(shape);
      expect(Array.from(back.data as Int32Array)).toEqual(Array.from(arr.data as Int32Array));
    }
  });

  it('pads the header so the data starts on a 64-byte boundary, as numpy does', () => {
    for (const shape of [[], [1], [12345678901], [2, 3, 4, 5, 6, 7, 8, 9]]) {
      const n = shape.reduce((a, d) => a * d, 1);
      if (n > 1e6) continue;
      const bytes = encodeNpy({ dtype: 'uint8', shape, data: new Uint8Array(n) });
      const headerLen = bytes[8] | (bytes[9] << 8);
      expect((10 + headerLen) % 64).toBe(0);
      expect(bytes[10 + headerLen - 1]).toBe(0x0a);
    }
  });

  it('encodes from a typed-array view that does not start at its buffer offset 0', () => {
    const backing = new Float32Array([9, 1, 2, 3, 9]);
    const back = parseNpy(encodeNpy({ dtype: 'float32', shape: [3], data: backing.subarray(1, 4) }), 'mem.npy');
    expect(Array.from(back.data as Float32Array)).toEqual([1, 2, 3]);
  });

  it('rejects an NdArray whose data does not match its dtype or shape (a programming error, not a UserError)', () => {
    expect(() => encodeNpy({ dtype: 'float32', shape: [4], data: new Float32Array(3) })).toThrow(/does not hold/);
    expect(() => encodeNpy({ dtype: 'float32', shape: [2], data: new Float64Array(2) })).toThrow(/does not hold/);
    expect(() => encodeNpy({ dtype: 'float32', shape: [2], data: new Float32Array(2) })).not.toThrow();
    expect(() => encodeNpy({ dtype: 'float32', shape: [-1], data: new Float32Array(0) })).toThrow(/invalid shape/);
  });
});

describe('parseNpy on files numpy wrote', () => {
  const dir = tempDir();
  beforeAll(() => {
    runPython(
      dir,
      `
for name in ['float32','float64','float16','int64','int32','int16','int8','uint8','uint16','uint32','uint64','bool']:
    a = (np.arange(6) % 2 == 1) if name == 'bool' else np.arange(-2, 4).astype(name) if name[0] != 'u' else np.arange(6).astype(name)
    np.save(f'{d}/{name}.npy', a.reshape(2, 3))
np.save(f'{d}/be_f4.npy', np.array([[1.5, -2.25], [3.0, 1e-3]], dtype='>f4'))
np.save(f'{d}/be_i8.npy', np.array([1, -2, 2**40], dtype='>i8'))
np.save(f'{d}/be_f8.npy', np.array([np.pi, -0.0], dtype='>f8'))
np.save(f'{d}/fortran.npy', np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
np.save(f'{d}/object.npy', np.array([{'a': 1}, None], dtype=object), allow_pickle=True)
np.save(f'{d}/complex.npy', np.array([1+2j], dtype=np.complex64))
np.save(f'{d}/unicode.npy', np.array(['ab', 'c']))
np.save(f'{d}/structured.npy', np.zeros(2, dtype=[('a', '<f4'), ('b', '<i4')]))
np.save(f'{d}/scalar.npy', np.float64(2.5))
np.lib.format.write_array(open(f'{d}/v2.npy', 'wb'), np.arange(3, dtype=np.int16), version=(2, 0))
np.lib.format.write_array(open(f'{d}/v3.npy', 'wb'), np.arange(3, dtype=np.int16), version=(3, 0))
`,
    );
  });
  const read = (name: string): Uint8Array => readFileSync(join(dir, name));

  it.each(NPY_DTYPES)('reads np.save output of %s with the values numpy wrote', (dtype) => {
    const arr = parseNpy(read(`${dtype}.npy`), `${dtype}.npy`);
    expect(arr.dtype).toBe(dtype);
    expect(arr.shape).toEqual([2, 3]);
    const expected =
      dtype === 'bool'
        ? [0, 1, 0, 1, 0, 1]
        : dtype === 'float16'
          ? [0xc000, 0xbc00, 0x0000, 0x3c00, 0x4000, 0x4200] // -2, -1, 0, 1, 2, 3 as IEEE half bits
          : dtype.startsWith('u')
            ? [0, 1, 2, 3, 4, 5]
            : [-2, -1, 0, 1, 2, 3];
    expect(Array.from(arr.data as ArrayLike<number | bigint>, Number)).toEqual(expected);
  });

  it.each(NPY_DTYPES)('encodes %s byte-for-byte like np.save', (dtype) => {
    const bytes = read(`${dtype}.npy`);
    expect(encodeNpy(parseNpy(bytes, 'x.npy'))).toEqual(new Uint8Array(bytes));
  });

  it('converts big-endian >f4, >i8 and >f8 arrays to native values', () => {
    const f4 = parseNpy(read('be_f4.npy'), 'be_f4.npy');
    expect(f4.dtype).toBe('float32');
    expect(Array.from(f4.data as Float32Array)).toEqual([1.5, -2.25, 3, Math.fround(1e-3)]);
    const i8 = parseNpy(read('be_i8.npy'), 'be_i8.npy');
    expect(Array.from(i8.data as BigInt64Array)).toEqual([1n, -2n, 2n ** 40n]);
    const f8 = parseNpy(read('be_f8.npy'), 'be_f8.npy');
    expect(Array.from(f8.data as Float64Array)).toEqual([Math.PI, -0]);
  });

  it('reads format versions 2.0 and 3.0 and 0-d arrays', () => {
    expect(Array.from(parseNpy(read('v2.npy'), 'v2.npy').data as Int16Array)).toEqual([0, 1, 2]);
    expect(Array.from(parseNpy(read('v3.npy'), 'v3.npy').data as Int16Array)).toEqual([0, 1, 2]);
    const s = parseNpy(read('scalar.npy'), 'scalar.npy');
    expect(s.shape).toEqual([]);
    expect(Array.from(s.data as Float64Array)).toEqual([2.5]);
  });

  it('refuses a Fortran-order array and says to use np.ascontiguousarray', () => {
    expectUserError(() => parseNpy(read('fortran.npy'), 'data/f.npy'), /^data\/f\.npy: /, 'Fortran', 'np.ascontiguousarray');
  });

  it('refuses object, complex, string and structured dtypes with a conversion hint', () => {
    expectUserError(() => parseNpy(read('object.npy'), 'o.npy'), /^o\.npy: /, 'Python objects', 'np.asarray');
    expectUserError(() => parseNpy(read('complex.npy'), 'c.npy'), "unsupported dtype '<c8'", 'astype');
    expectUserError(() => parseNpy(read('unicode.npy'), 'u.npy'), "unsupported dtype '<U2'");
    expectUserError(() => parseNpy(read('structured.npy'), 's.npy'), 'structured', 'own plain array');
  });
});

describe('parseNpy on hand-made bytes', () => {
  const hdr = (descr: string, shape: string, fortran = 'False'): string =>
    `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }\n`;

  it('copies data from an unaligned view into an aligned typed array', () => {
    const file = npyBytes(hdr('<f8', '(2,)'), new Uint8Array(new Float64Array([1.25, -7]).buffer));
    const shifted = new Uint8Array(file.length + 3);
    shifted.set(file, 3);
    const arr = parseNpy(shifted.subarray(3), 'odd.npy');
    expect(arr.data.byteOffset % 8).toBe(0);
    expect(Array.from(arr.data as Float64Array)).toEqual([1.25, -7]);
    // the result must not alias the input buffer
    shifted.fill(0);
    expect(Array.from(arr.data as Float64Array)).toEqual([1.25, -7]);
  });

  it('copies out of a pooled Node Buffer, whose slice() would be a shared view', () => {
    const file = Buffer.from(npyBytes(hdr('<i4', '(2,)'), new Uint8Array(new Int32Array([5, -6]).buffer)));
    const pooled = Buffer.concat([Buffer.from([1, 2, 3]), file]).subarray(3);
    const arr = parseNpy(pooled, 'pool.npy');
    expect(arr.data.byteOffset).toBe(0);
    expect(arr.data.buffer.byteLength).toBe(8);
    expect(Array.from(arr.data as Int32Array)).toEqual([5, -6]);
  });

  it('byte-swaps big-endian data of every width', () => {
    const be = (bytes: number[]): Uint8Array => new Uint8Array(bytes);
    expect(Array.from(parseNpy(npyBytes(hdr('>u2', '(2,)'), be([0x01, 0x02, 0xff, 0x00])), 'a').data as Uint16Array)).toEqual([0x0102, 0xff00]);
    expect(Array.from(parseNpy(npyBytes(hdr('>f4', '(1,)'), be([0x3f, 0xc0, 0, 0])), 'a').data as Float32Array)).toEqual([1.5]);
    expect(Array.from(parseNpy(npyBytes(hdr('>i8', '(1,)'), be([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])), 'a').data as BigInt64Array)).toEqual([-2n]);
    expect(Array.from(parseNpy(npyBytes(hdr('>i1', '(1,)'), be([0xff])), 'a').data as Int8Array)).toEqual([-1]);
  });

  it('accepts double-quoted keys, Python-2 long dims and keys in any order', () => {
    const arr = parseNpy(
      npyBytes(`{"shape": (1L, 2L), "fortran_order": False, "descr": "<f4"}`, f32Bytes([1, 2])),
      'old.npy',
    );
    expect(arr.shape).toEqual([1, 2]);
  });

  it('refuses fortran_order True in a hand-made header too', () => {
    expectUserError(() => parseNpy(npyBytes(hdr('<f4', '(1, 2)', 'True'), f32Bytes([1, 2])), 'fx.npy'), 'np.ascontiguousarray');
  });

  it('refuses bad magic bytes and names the file', () => {
    expectUserError(() => parseNpy(new TextEncoder().encode('hello world, not numpy'), 'in/bad.npy'), /^in\/bad\.npy: not a NumPy \.npy file/);
    expectUserError(() => parseNpy(new Uint8Array(0), 'empty.npy'), /^empty\.npy: not a NumPy/);
    expectUserError(() => parseNpy(new Uint8Array([0x93, 0x4e, 0x55]), 'short.npy'), /^short\.npy: /);
  });

  it('refuses unknown format versions', () => {
    const f = npyBytes(hdr('<f4', '(1,)'), f32Bytes([1]));
    f[6] = 4;
    expectUserError(() => parseNpy(f, 'v4.npy'), 'version 4.0');
  });

  it('refuses truncated data, saying how many bytes were needed and present', () => {
    const full = npyBytes(hdr('<f4', '(10,)'), f32Bytes(Array.from({ length: 10 }, (_, i) => i)));
    expectUserError(() => parseNpy(full.subarray(0, full.length - 1), 'cut.npy'), /^cut\.npy: truncated/, '40 bytes', 'only 39');
  });

  it('refuses a header that runs past the end of the file', () => {
    const full = npyBytes(hdr('<f4', '(1,)'), f32Bytes([1]));
    expectUserError(() => parseNpy(full.subarray(0, 20), 'cut.npy'), 'truncated');
    expectUserError(() => parseNpy(full.subarray(0, 9), 'cut.npy'), /^cut\.npy: /);
  });

  it('refuses an absurd declared header length without reading it', () => {
    const f = npyBytes(hdr('<f4', '(1,)'), f32Bytes([1]), 2);
    new DataView(f.buffer).setUint32(8, 0xffffffff, true);
    expectUserError(() => parseNpy(f, 'big.npy'), 'absurd header length');
  });

  it('refuses bytes left over after the data', () => {
    expectUserError(() => parseNpy(npyBytes(hdr('<f4', '(1,)'), f32Bytes([1, 2])), 'long.npy'), '4 unexpected bytes');
  });

  it('refuses huge declared shapes instead of allocating them', () => {
    for (const shape of ['(1000000000000, 1000000000000)', '(4611686018427387904,)', '(99999999999999999999999,)', `(${Array(64).fill('65536').join(', ')})`]) {
      expectUserError(() => parseNpy(npyBytes(hdr('<f8', shape), new Uint8Array(16)), 'huge.npy'), /^huge\.npy: /);
    }
    expectUserError(() => parseNpy(npyBytes(hdr('<f8', `(${Array(65).fill('1').join(', ')})`), new Uint8Array(8)), 'r.npy'), 'dimensions');
  });

  it('refuses negative and non-integer dims, naming the axis', () => {
    expectUserError(() => parseNpy(npyBytes(hdr('<f4', '(2, -1)'), f32Bytes([1, 2])), 'n.npy'), 'negative', 'axis 1');
    expectUserError(() => parseNpy(npyBytes(hdr('<f4', "(2, 'a')"), f32Bytes([1, 2])), 'n.npy'), 'non-integer', 'axis 1');
    expectUserError(() => parseNpy(npyBytes(hdr('<f4', '(2.5,)'), f32Bytes([1, 2])), 'n.npy'), /^n\.npy: /);
    expectUserError(() => parseNpy(npyBytes(hdr('<f4', '[2]'), f32Bytes([1, 2])), 'n.npy'), 'not a tuple');
  });

  it('refuses object dtype declared by hand, in both spellings', () => {
    expectUserError(() => parseNpy(npyBytes(hdr('|O', '(1,)'), new Uint8Array(8)), 'o.npy'), 'Python objects');
    expectUserError(() => parseNpy(npyBytes(hdr('<O8', '(1,)'), new Uint8Array(8)), 'o.npy'), 'Python objects');
  });

  it('refuses malformed headers: not a dict, missing keys, duplicate keys, deep nesting', () => {
    const cases = [
      "'just a string'",
      "{'descr': '<f4', 'shape': (1,)}",
      "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
      "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}",
      "{'descr': 5, 'fortran_order': False, 'shape': (1,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} trailing",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)",
      "{'descr': '<f4",
      `{'x': ${'['.repeat(10000)}`,
      "{'descr': '<f4', 'fortran_order': False, 'shape': __import__('os')}",
    ];
    for (const h of cases) expectUserError(() => parseNpy(npyBytes(h, f32Bytes([1])), 'h.npy'), /^h\.npy: /);
  });

  it('throws nothing but UserError on random bytes (fuzz)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expectUserError(() => parseNpy(bytes, 'fuzz.npy'));
      }),
      { numRuns: 500 },
    );
  });

  it('throws nothing but UserError when a valid file is mutated, truncated or extended (fuzz)', () => {
    const base = encodeNpy({ dtype: 'int16', shape: [3, 2], data: new Int16Array([1, 2, 3, 4, 5, 6]) });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(base.length + 8),
        (edits, cut) => {
          const bytes = new Uint8Array(base.length + 8);
          bytes.set(base);
          for (const [i, v] of edits) bytes[i] = v;
          try {
            const arr = parseNpy(bytes.subarray(0, cut), 'fuzz.npy');
            expect(arr.data.length).toBe(arr.shape.reduce((a, d) => a * d, 1));
          } catch (e) {
            expect(e).toBeInstanceOf(UserError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('throws nothing but UserError on random header text (fuzz)', () => {
    const token = fc.constantFrom("'descr'", "'shape'", "'fortran_order'", "'<f4'", "'>i8'", "'|O'", 'True', 'False', 'None', '(', ')', '[', ']', '{', '}', ',', ':', ' ', '1', '-3', '99999999999999999999', "'", '"', '\\', 'L', '2.5');
    fc.assert(
      fc.property(fc.array(token, { maxLength: 40 }), fc.uint8Array({ maxLength: 64 }), (tokens, data) => {
        try {
          parseNpy(npyBytes(tokens.join(''), data), 'fuzz.npy');
        } catch (e) {
          expect(e).toBeInstanceOf(UserError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('parseNpy without a second copy', () => {
  it('returns a big aligned array as a view into the bytes it was given, a small one as a copy', () => {
    const big = encodeNpy({ dtype: 'float32', shape: [512, 1024], data: Float32Array.from({ length: 512 * 1024 }, (_, i) => i % 97) });
    const back = parseNpy(big, 'big.npy');
    expect(back.data.buffer).toBe(big.buffer);
    expect(back.data[1000]).toBe(1000 % 97);
    const small = encodeNpy({ dtype: 'float32', shape: [3], data: Float32Array.from([1, 2, 3]) });
    expect(parseNpy(small, 'small.npy').data.buffer).not.toBe(small.buffer);
  });

  it('copies a big array whose data would be unaligned in the bytes given', () => {
    const big = encodeNpy({ dtype: 'float32', shape: [300000], data: Float32Array.from({ length: 300000 }, (_, i) => i) });
    const shifted = new Uint8Array(big.length + 1);
    shifted.set(big, 1);
    const back = parseNpy(shifted.subarray(1), 'shifted.npy');
    expect(back.data.buffer).not.toBe(shifted.buffer);
    expect(back.data[299999]).toBe(299999);
  });
});
