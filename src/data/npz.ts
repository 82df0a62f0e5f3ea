/**
 * NumPy .npz archives (a zip of .npy members, as np.savez / np.savez_compressed write them) and bare .npy
 * files, read fully into memory: data sets are small enough, and one read gives one consistent snapshot.
 */
import { writeFileAtomic } from '../io/atomicWrite.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Unzip, UnzipInflate, unzipSync, zipSync, type Zippable } from 'fflate';
import { describe, UserError } from '../errors.js';
import { memoryShare, mib, readInputFile } from '../io/inputFile.js';
import { encodeNpy, parseNpy, type NdArray } from './npy.js';

const ZIP_STORED = 0;
const ZIP_DEFLATE = 8;
// deflate cannot expand more than ~1032:1, so a bigger claimed size is a corrupt or hostile directory;
// checking it before fflate allocates the output buffer keeps a 1 kB file from asking for 4 GB
const MAX_DEFLATE_RATIO = 1100;
// smallest central-directory record; bounds how many entries a file of this size can really hold
const MIN_CENTRAL_ENTRY = 46;
// compressed bytes handed to the inflater at a time: at most ~66 MB of output before the size check
const INFLATE_SLICE = 64 * 1024;
// a fixed timestamp makes identical arrays produce identical bytes (stable hashes, clean diffs)
const ZIP_MTIME = new Date(1980, 0, 1);

function readFile(file: string): Uint8Array {
  return readInputFile(file, { expected: 'a .npz or .npy file' });
}

/** A member's entry in the zip central directory, checked against the file before anything is inflated. */
interface Member {
  name: string;
  compression: number;
  size: number;
  originalSize: number;
}

/**
 * The arrays of a .npz archive, inflated only when asked for: a data set reads the members its model
 * needs and nothing else. Each member is inflated in slices and stopped at its declared size, and the
 * declared sizes of what is read must fit the machine's memory share, so a zip bomb (a member that
 * claims little and inflates to gigabytes, or claims more than memory) ends in one line, not an OOM.
 */
export class NpzArchive {
  private readonly members = new Map<string, Member>();
  private readonly cache = new Map<string, NdArray>();
  private inflated = 0;

  constructor(
    readonly file: string,
    private readonly bytes: Uint8Array,
    private readonly maxBytes = memoryShare(),
  ) {
    if (bytes.length >= 6 && bytes[0] === 0x93 && String.fromCharCode(...bytes.subarray(1, 6)) === 'NUMPY') {
      throw new UserError(`${file}: is a single .npy array, not a .npz archive; rename it to end in .npy`);
    }
    let entries = 0;
    try {
      // the filter sees every central-directory entry and declines them all: a scan, nothing inflated
      unzipSync(bytes, {
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
          this.members.set(f.name.slice(0, -'.npy'.length), { name: f.name, compression: f.compression, size: f.size, originalSize: f.originalSize });
          return false;
        },
      });
    } catch (e) {
      throw new UserError(`${file}: not a NumPy .npz archive (${describe(e)}); re-create it with np.savez or np.savez_compressed`);
    }
    if (this.members.size === 0) {
      throw new UserError(`${file}: archive holds no .npy arrays; create it with np.savez(path, x=..., y=...)`);
    }
  }

  keys(): IterableIterator<string> {
    return this.members.keys();
  }

  has(name: string): boolean {
    return this.members.has(name);
  }

  get(name: string): NdArray | undefined {
    const member = this.members.get(name);
    if (!member) return undefined;
    const cached = this.cache.get(name);
    if (cached) return cached;
    const subject = `${this.file} (array '${name}')`;
    if (this.inflated + member.originalSize > this.maxBytes) {
      throw new UserError(`${subject}: declares ${mib(member.originalSize)} uncompressed, more than the ${mib(this.maxBytes - this.inflated)} this machine can hold for it; use a smaller data slice`);
    }
    const data = this.inflate(member, subject);
    this.inflated += data.length;
    const arr = parseNpy(data, subject);
    this.cache.set(name, arr);
    return arr;
  }

  private inflate(member: Member, subject: string): Uint8Array {
    let out: Uint8Array | undefined;
    let got = 0;
    const unzip = new Unzip((f) => {
      if (f.name !== member.name || out) return;
      out = new Uint8Array(member.originalSize);
      f.ondata = (err, chunk) => {
        if (err) throw err;
        if (got + chunk.length > member.originalSize) throw new ZipBomb();
        out!.set(chunk, got);
        got += chunk.length;
      };
      f.start();
    });
    unzip.register(UnzipInflate);
    try {
      // in slices, so a member that inflates past its declared size is stopped within one slice's output
      for (let i = 0; i < this.bytes.length; i += INFLATE_SLICE) unzip.push(this.bytes.subarray(i, i + INFLATE_SLICE), i + INFLATE_SLICE >= this.bytes.length);
    } catch (e) {
      if (e instanceof ZipBomb) {
        throw new UserError(`${subject}: inflates past the ${mib(member.originalSize)} its zip entry declares (a zip bomb or a corrupt archive); re-create it with np.savez`);
      }
      throw new UserError(`${subject}: cannot be unpacked (${describe(e)}); re-create the archive with np.savez or np.savez_compressed`);
    }
    if (!out || got !== member.originalSize) {
      throw new UserError(`${subject}: holds ${got} of the ${member.originalSize} bytes its zip entry declares; re-create the archive with np.savez`);
    }
    return out;
  }
}

class ZipBomb extends Error {}

/** Every array of a .npz archive, read now (for small files prune-guard reads whole, such as masks). */
export function readNpz(file: string): Map<string, NdArray> {
  const archive = new NpzArchive(file, readFile(file));
  return new Map([...archive.keys()].map((k) => [k, archive.get(k)!]));
}

export function readNpy(file: string): NdArray {
  return parseNpy(readFile(file), file);
}

/** What a data file offers: its array names, and each array on demand. */
export interface ArraySource {
  keys(): IterableIterator<string>;
  has(name: string): boolean;
  get(name: string): NdArray | undefined;
}

/** Arrays of a data file by name, read when asked for; a bare .npy file is the single array `x`. */
export function readArrays(file: string): ArraySource {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.npz') return new NpzArchive(file, readFile(file));
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
