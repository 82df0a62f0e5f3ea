import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { zipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { encodeNpy, type NdArray } from '../../src/data/npy.js';
import { NpzArchive, readArrays, readNpy, readNpz, writeNpz } from '../../src/data/npz.js';
import { loadDataset } from '../../src/data/dataset.js';
import { runCli } from '../support/cli.js';
import { fixture } from '../support/fixtures.js';
import { runPython, tempDir, userErrorOf } from './helpers.js';

const values = (a: NdArray | undefined): number[] => Array.from(a!.data as ArrayLike<number | bigint>, Number);

describe('readNpz on archives numpy wrote', () => {
  const dir = tempDir();
  beforeAll(() => {
    runPython(
      dir,
      `
arrays = dict(
    x=np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 4,
    y=np.array([3, 0, 7], dtype=np.int64),
    mask=np.array([True, False, True]),
    half=np.array([0.5, -1.0], dtype=np.float16),
    big=np.array([[1.5, -2.0], [1e-3, 4.0]], dtype='>f4'),
    bigint=np.array([2**40, -5], dtype='>i8'),
    pixels=np.arange(250, 256, dtype=np.uint8),
)
np.savez(f'{d}/plain.npz', **arrays)
np.savez_compressed(f'{d}/compressed.npz', **arrays)
np.savez(f'{d}/fortran.npz', x=np.asfortranarray(np.ones((2, 3), dtype=np.float32)), y=np.arange(2))
np.savez(f'{d}/positional.npz', np.arange(3, dtype=np.int32), np.arange(2, dtype=np.int32))
np.save(f'{d}/single.npy', np.arange(6, dtype=np.float32).reshape(3, 2))
`,
    );
  });

  it.each(['plain', 'compressed'])('reads every array of an np.savez%s archive with its values', (kind) => {
    const m = readNpz(join(dir, `${kind}.npz`));
    expect([...m.keys()].sort()).toEqual(['big', 'bigint', 'half', 'mask', 'pixels', 'x', 'y']);
    expect(m.get('x')!.dtype).toBe('float32');
    expect(m.get('x')!.shape).toEqual([2, 3, 4]);
    expect(values(m.get('x'))).toEqual(Array.from({ length: 24 }, (_, i) => i / 4));
    expect(m.get('y')!.dtype).toBe('int64');
    expect(values(m.get('y'))).toEqual([3, 0, 7]);
    expect(m.get('mask')!.dtype).toBe('bool');
    expect(values(m.get('mask'))).toEqual([1, 0, 1]);
    expect(m.get('half')!.dtype).toBe('float16');
    expect(values(m.get('half'))).toEqual([0x3800, 0xbc00]);
    expect(values(m.get('pixels'))).toEqual([250, 251, 252, 253, 254, 255]);
  });

  it('converts big-endian members (>f4, >i8) to native values', () => {
    for (const kind of ['plain', 'compressed']) {
      const m = readNpz(join(dir, `${kind}.npz`));
      expect(m.get('big')!.dtype).toBe('float32');
      expect(values(m.get('big'))).toEqual([1.5, -2, Math.fround(1e-3), 4]);
      expect(m.get('bigint')!.dtype).toBe('int64');
      expect(Array.from(m.get('bigint')!.data as BigInt64Array)).toEqual([2n ** 40n, -5n]);
    }
  });

  it('refuses a Fortran-order member, naming the archive and the array', () => {
    const file = join(dir, 'fortran.npz');
    const msg = userErrorOf(() => readNpz(file));
    expect(msg.startsWith(`${file} (array 'x'): `)).toBe(true);
    expect(msg).toContain('np.ascontiguousarray');
  });

  it('keeps the arr_0, arr_1 names np.savez gives positional arrays', () => {
    expect([...readNpz(join(dir, 'positional.npz')).keys()].sort()).toEqual(['arr_0', 'arr_1']);
  });

  it('reads a single np.save file, and readArrays exposes it as x', () => {
    const file = join(dir, 'single.npy');
    expect(readNpy(file).shape).toEqual([3, 2]);
    const m = readArrays(file);
    expect([...m.keys()]).toEqual(['x']);
    expect(values(m.get('x'))).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('writes archives numpy reads back with the same dtypes and values', () => {
    const file = join(dir, 'ours.npz');
    writeNpz(file, {
      x: { dtype: 'float32', shape: [2, 2], data: new Float32Array([0.25, -1, 3, 1e20]) },
      y: { dtype: 'int64', shape: [2], data: new BigInt64Array([9n, -(2n ** 62n)]) },
      m: { dtype: 'bool', shape: [3], data: new Uint8Array([1, 0, 1]) },
    });
    writeNpz(join(dir, 'ours-z.npz'), { x: { dtype: 'uint16', shape: [2], data: new Uint16Array([1, 65535]) } }, { compress: true });
    const out = runPython(
      dir,
      `
a = np.load(f'{d}/ours.npz')
z = np.load(f'{d}/ours-z.npz')
print(json.dumps({k: [str(a[k].dtype), list(a[k].shape), a[k].ravel().tolist()] for k in a.files} | {'z': [str(z['x'].dtype), list(z['x'].shape), z['x'].tolist()]}))
`,
    );
    expect(JSON.parse(out)).toEqual({
      x: ['float32', [2, 2], [0.25, -1, 3, Math.fround(1e20)]],
      y: ['int64', [2], [9, -(2 ** 62)]],
      m: ['bool', [3], [true, false, true]],
      z: ['uint16', [2], [1, 65535]],
    });
  });
});

describe('readNpz / readArrays errors', () => {
  const dir = tempDir();

  it('says "file not found" for a missing path', () => {
    const file = join(dir, 'nope.npz');
    expect(userErrorOf(() => readNpz(file))).toBe(`${file}: file not found; pass the path of a .npz or .npy file`);
    expect(userErrorOf(() => readArrays(file))).toBe(`${file}: file not found; pass the path of a .npz or .npy file`);
    expect(userErrorOf(() => readNpy(join(dir, 'nope.npy')))).toBe(`${join(dir, 'nope.npy')}: file not found; pass the path of a .npz or .npy file`);
  });

  it('says "not a NumPy .npz archive" for a file that is not a zip', () => {
    const file = join(dir, 'text.npz');
    writeFileSync(file, 'x,y\n1,2\n');
    expect(userErrorOf(() => readNpz(file))).toMatch(new RegExp(`^${file.replace(/[.\\/]/g, '\\$&')}: not a NumPy \\.npz archive \\(.+\\); `));
    writeFileSync(file, '');
    expect(userErrorOf(() => readNpz(file))).toContain('not a NumPy .npz archive');
  });

  it('says "not a NumPy .npz archive" for a truncated archive', () => {
    const whole = join(dir, 'whole.npz');
    writeNpz(whole, { x: { dtype: 'float32', shape: [64], data: new Float32Array(64).fill(1) } }, { compress: true });
    const bytes = readFileSync(whole);
    const cut = join(dir, 'cut.npz');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 30));
    expect(userErrorOf(() => readNpz(cut))).toContain('not a NumPy .npz archive');
  });

  it('tells the user to rename a .npy file that was given a .npz name', () => {
    const file = join(dir, 'mislabelled.npz');
    writeFileSync(file, encodeNpy({ dtype: 'uint8', shape: [1], data: new Uint8Array([1]) }));
    expect(userErrorOf(() => readNpz(file))).toContain('rename it to end in .npy');
  });

  it('refuses an archive that holds no .npy members, and skips non-.npy members otherwise', () => {
    const empty = join(dir, 'docs.npz');
    writeFileSync(empty, zipSync({ 'README.txt': new TextEncoder().encode('hi') }));
    expect(userErrorOf(() => readNpz(empty))).toContain('holds no .npy arrays');
    const mixed = join(dir, 'mixed.npz');
    writeFileSync(
      mixed,
      zipSync({
        'README.txt': new TextEncoder().encode('hi'),
        'x.npy': encodeNpy({ dtype: 'int8', shape: [2], data: new Int8Array([-1, 1]) }),
      }),
    );
    expect([...readNpz(mixed).keys()]).toEqual(['x']);
  });

  it('names the member when one array inside the archive is corrupt', () => {
    const file = join(dir, 'badmember.npz');
    writeFileSync(file, zipSync({ 'x.npy': new TextEncoder().encode('garbage'), 'y.npy': new Uint8Array(0) }, { level: 0 }));
    expect(userErrorOf(() => readNpz(file))).toMatch(/\(array '[xy]'\): not a NumPy \.npy file/);
  });

  it('refuses a directory and an unsupported extension', () => {
    const sub = join(dir, 'folder.npz');
    mkdirSync(sub);
    expect(userErrorOf(() => readNpz(sub))).toContain('is a folder');
    expect(userErrorOf(() => readArrays(join(dir, 'data.csv')))).toContain("unsupported data file type '.csv'");
    expect(userErrorOf(() => readArrays(join(dir, 'data')))).toContain('(no extension)');
  });

  it('dispatches on the extension case-insensitively', () => {
    const file = join(dir, 'UPPER.NPZ');
    writeNpz(file, { x: { dtype: 'int32', shape: [1], data: new Int32Array([4]) } });
    expect(values(readArrays(file).get('x'))).toEqual([4]);
  });

  it('throws nothing but UserError for mutated or truncated archives (fuzz)', () => {
    const base = join(dir, 'base.npz');
    writeNpz(base, {
      x: { dtype: 'float32', shape: [4, 2], data: new Float32Array(8).map((_, i) => i) },
      y: { dtype: 'int64', shape: [4], data: new BigInt64Array([0n, 1n, 2n, 3n]) },
    }, { compress: true });
    const bytes = readFileSync(base);
    const file = join(dir, 'fuzz.npz');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.nat(bytes.length),
        (edits, cut) => {
          const b = Uint8Array.from(bytes);
          for (const [i, v] of edits) b[i] = v;
          writeFileSync(file, b.subarray(0, Math.max(cut, bytes.length - 40)));
          try {
            readNpz(file);
          } catch (e) {
            expect(e).toBeInstanceOf(UserError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('writeNpz', () => {
  const dir = tempDir();
  const arrays: Record<string, NdArray> = {
    x: { dtype: 'float32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    y: { dtype: 'int64', shape: [2], data: new BigInt64Array([1n, 0n]) },
  };

  it('round-trips through readNpz, stored or compressed', () => {
    for (const compress of [false, true]) {
      const file = join(dir, `rt-${compress}.npz`);
      writeNpz(file, arrays, { compress });
      const back = readNpz(file);
      expect(back.get('x')!.shape).toEqual([2, 3]);
      expect(values(back.get('x'))).toEqual([1, 2, 3, 4, 5, 6]);
      expect(values(back.get('y'))).toEqual([1, 0]);
    }
  });

  it('replaces an existing file and leaves no temporary files behind', () => {
    const sub = join(dir, 'atomic');
    mkdirSync(sub);
    const file = join(sub, 'out.npz');
    writeFileSync(file, 'old contents');
    writeNpz(file, arrays);
    expect(readdirSync(sub)).toEqual(['out.npz']);
    expect(values(readNpz(file).get('y'))).toEqual([1, 0]);
  });

  it('writes identical bytes for identical arrays, whenever it runs', () => {
    const a = join(dir, 'same-a.npz');
    const b = join(dir, 'same-b.npz');
    writeNpz(a, arrays);
    writeNpz(b, arrays);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
  });

  it('creates a missing output folder', () => {
    const file = join(dir, 'no-such-dir', 'out.npz');
    writeNpz(file, arrays);
    expect(readNpz(file).size).toBe(Object.keys(arrays).length);
  });

  it('does not leave a temporary file when the rename fails', () => {
    const sub = join(dir, 'rename-fails');
    mkdirSync(sub);
    const target = join(sub, 'taken.npz');
    mkdirSync(target); // renaming a file over a directory fails
    copyFileSync(join(dir, 'same-a.npz'), join(sub, 'keep.npz'));
    expect(userErrorOf(() => writeNpz(target, arrays))).toContain('cannot write');
    expect(readdirSync(sub).sort()).toEqual(['keep.npz', 'taken.npz']);
  });
});

/** Rewrite every zip entry's uncompressed size for `member` to `declared` (local header and central directory). */
function declareSize(zip: Uint8Array, member: string, declared: number): Uint8Array {
  const b = Buffer.from(zip);
  const name = Buffer.from(member);
  for (let i = 0; i + 4 <= b.length; i++) {
    const sig = b.readUInt32LE(i);
    if (sig === 0x04034b50 && b.subarray(i + 30, i + 30 + name.length).equals(name)) b.writeUInt32LE(declared, i + 22);
    if (sig === 0x02014b50 && b.subarray(i + 46, i + 46 + name.length).equals(name)) b.writeUInt32LE(declared, i + 24);
  }
  return b;
}

describe('zip bombs and lazy members', () => {
  const dir = tempDir();
  const x = { dtype: 'float32' as const, shape: [3, 784], data: new Float32Array(3 * 784).fill(0.5) };
  const y = { dtype: 'int64' as const, shape: [3], data: new BigInt64Array([0n, 1n, 2n]) };
  const MiB = 2 ** 20;
  // 32 MiB of zeros deflate to ~32 kB; the entry claims 1 MiB
  const bomb = (): Uint8Array => declareSize(zipSync({ 'x.npy': new Uint8Array(32 * MiB) }, { level: 9 }), 'x.npy', MiB);

  it('a member that inflates past its declared size is refused in one line, inflating little more than it claimed', () => {
    const file = join(dir, 'bomb.npz');
    writeFileSync(file, bomb());
    const rss = process.memoryUsage().rss;
    expect(userErrorOf(() => readArrays(file).get('x'))).toBe(
      `${file} (array 'x'): inflates past the 1.0 MiB its zip entry declares (a zip bomb or a corrupt archive); re-create it with np.savez`,
    );
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 * MiB);
  });

  it('a member declaring more than the machine can hold is refused before it is inflated', () => {
    const file = join(dir, 'big.npz');
    writeNpz(file, { x, y });
    const archive = new NpzArchive(file, readFileSync(file), 4096);
    expect(userErrorOf(() => archive.get('x'))).toMatch(new RegExp(`^${file.replace(/[.\\/]/g, '\\$&')} \\(array 'x'\\): declares 0\\.0 MiB uncompressed, more than the 0\\.0 MiB this machine can hold for it; use a smaller data slice$`));
    expect(archive.get('y')!.shape).toEqual([3]);
  });

  it('only the members a model needs are inflated: a bomb beside them is never touched', () => {
    const file = join(dir, 'with-junk.npz');
    const ok = zipSync({ 'x.npy': encodeNpy(x), 'y.npy': encodeNpy(y), 'junk.npy': new Uint8Array(32 * MiB) }, { level: 9 });
    writeFileSync(file, declareSize(ok, 'junk.npy', MiB));
    const set = loadDataset(file, [{ name: 'input', dtype: 'float32', dims: ['N', 784] }], { requireLabels: true });
    expect(set.count).toBe(3);
    expect(userErrorOf(() => readArrays(file).get('junk'))).toMatch(/inflates past/);
  });

  it('a run given a bomb as its data stops with exit 2 and one line before any work', async () => {
    const file = join(dir, 'bomb-data.npz');
    writeFileSync(file, bomb());
    const out = join(tempDir(), 'out');
    const r = await runCli(['run', '--model', fixture('mlp.onnx'), '--data', file, '--out', out, '--quiet']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([`prune-guard: error: ${file} (array 'x'): inflates past the 1.0 MiB its zip entry declares (a zip bomb or a corrupt archive); re-create it with np.savez`]);
    expect(existsSync(out)).toBe(false);
  });
});
