/**
 * NumPy .npz archives (a zip of .npy members, as np.savez / np.savez_compressed write them) and bare .npy
 * files, read fully into memory: data sets are small enough, and one read gives one consistent snapshot.
 */
import { writeFileAtomic } from '../io/atomicWrite.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { describe, UserError } from '../errors.js';
import { readInputFile } from '../io/inputFile.js';
import { encodeNpy, parseNpy, type NdArray } from './npy.js';

const ZIP_STORED = 0;
const ZIP_DEFLATE = 8;
// deflate cannot expand more than ~1032:1, so a bigger claimed size is a corrupt or hostile directory;
// checking it before fflate allocates the output buffer keeps a 1 kB file from asking for 4 GB
const MAX_DEFLATE_RATIO = 1100;
// smallest central-directory record; bounds how many entries a file of this size can really hold
const MIN_CENTRAL_ENTRY = 46;
// a fixed timestamp makes identical arrays produce identical bytes (stable hashes, clean diffs)
const ZIP_MTIME = new Date(1980, 0, 1);

function readFile(file: string): Uint8Array {
  return readInputFile(file, { expected: 'a .npz or .npy file' });
}

export function readNpz(file: string): Map<string, NdArray> {
  const bytes = readFile(file);
  if (bytes.length >= 6 && bytes[0] === 0x93 && String.fromCharCode(...bytes.subarray(1, 6)) === 'NUMPY') {
    throw new UserError(`${file}: is a single .npy array, not a .npz archive; rename it to end in .npy`);
  }

  const members: Record<string, Uint8Array> = (() => {
    let entries = 0;
    try {
      return unzipSync(bytes, {
        filter: (f) => {
          if (++entries > bytes.length / MIN_CENTRAL_ENTRY) throw new Error('more entries than the file can hold');
          if (!f.name.endsWith('.npy')) return false;
          if (f.compression !== ZIP_STORED && f.compression !== ZIP_DEFLATE) {
            throw new Error(`member ${f.name} uses zip compression method ${f.compression}; only stored and deflate are supported`);
          }
          if (f.size > bytes.length) throw new Error(`member ${f.name} claims ${f.size} bytes, beyond the end of the file`);
          if (f.compression === ZIP_DEFLATE && f.originalSize > f.size * MAX_DEFLATE_RATIO + 1024) {
            throw new Error(`member ${f.name} claims an impossible uncompressed size`);
          }
          return true;
        },
      });
    } catch (e) {
      throw new UserError(
        `${file}: not a NumPy .npz archive (${describe(e)}); re-create it with np.savez or np.savez_compressed`,
      );
    }
  })();

  const arrays = new Map<string, NdArray>();
  for (const [member, data] of Object.entries(members)) {
    const name = member.slice(0, -'.npy'.length);
    arrays.set(name, parseNpy(data, `${file} (array '${name}')`));
  }
  if (arrays.size === 0) {
    throw new UserError(`${file}: archive holds no .npy arrays; create it with np.savez(path, x=..., y=...)`);
  }
  return arrays;
}

export function readNpy(file: string): NdArray {
  return parseNpy(readFile(file), file);
}

/** Arrays of a data file by name; a bare .npy file is the single array `x`. */
export function readArrays(file: string): Map<string, NdArray> {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.npz') return readNpz(file);
  if (ext === '.npy') return new Map([['x', readNpy(file)]]);
  throw new UserError(
    `${file}: unsupported data file type '${ext || '(no extension)'}'; give a .npz archive (np.savez) or a .npy array (np.save)`,
  );
}

/**
 * Written to a temporary sibling and renamed into place, so a reader (or a crash) never sees a half-written
 * archive. Members are stored uncompressed like np.savez unless `compress` is set.
 */
export function writeNpz(file: string, arrays: Record<string, NdArray>, opts: { compress?: boolean } = {}): void {
  const level = opts.compress ? 6 : 0;
  const zippable: Zippable = {};
  for (const [name, arr] of Object.entries(arrays)) {
    if (name === '') throw new Error('writeNpz: empty array name');
    zippable[`${name}.npy`] = [encodeNpy(arr), { level, mtime: ZIP_MTIME }];
  }
  const bytes = zipSync(zippable);

  try {
    writeFileAtomic(file, bytes);
  } catch (e) {
    throw new UserError(`${file}: cannot write (${describe(e)}); check that the directory exists and is writable`);
  }
}
