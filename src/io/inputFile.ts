import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, UserError } from '../errors.js';

/** Kernel pseudo-file systems: their files claim a size of 0 or stream forever. */
const PSEUDO_ROOTS = ['/proc', '/sys', '/dev'];

/** Share of the machine's memory one input file may take; the rest is for sessions and activations. */
const MEMORY_SHARE = 0.5;

export interface InputFileOptions {
  /** how messages name the file (the action shows it relative to the workspace) */
  shownAs?: string;
  /** what the file should be, for the fix in a message: "an .onnx model", "a .npz or .npy file" */
  expected: string;
  /** the largest size accepted; defaults to half the machine's memory */
  maxBytes?: number;
}

/** Whether a resolved path lies on a kernel pseudo file system (/proc, /sys, /dev). */
export function underPseudoRoot(real: string): boolean {
  return PSEUDO_ROOTS.some((root) => real === root || real.startsWith(root + path.sep));
}

/**
 * Read a user's input file whole, checked before any byte is read: it must be a regular file (a FIFO,
 * device such as /dev/zero, socket or folder is refused instead of blocking or growing without end), not
 * under /proc, /sys or /dev, and no larger than the memory it would need. The file is opened without
 * blocking and checked through its descriptor, so a name swapped between check and read cannot slip
 * through. Every refusal is one UserError naming the file and the fix.
 */
export function readInputFile(file: string, opts: InputFileOptions): Buffer {
  const shown = opts.shownAs ?? file;
  const refuse = (why: string): never => {
    throw new UserError(`${shown}: ${why}; pass the path of ${opts.expected}`);
  };
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') refuse('file not found');
    return refuse(`cannot read (${describe(e)})`);
  }
  if (underPseudoRoot(real)) refuse(`is a system file (${real}), not a regular file`);
  let fd: number;
  try {
    fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    return refuse(`cannot read (${describe(e)})`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) refuse('is a folder');
    if (!st.isFile()) refuse(`is a ${kindOf(st)}, not a regular file`);
    const limit = opts.maxBytes ?? memoryShare();
    if (st.size > limit) refuse(`is ${mib(st.size)}, more than the ${mib(limit)} this machine can hold for it`);
    const bytes = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < st.size) {
      const n = fs.readSync(fd, bytes, off, st.size - off, off);
      if (n === 0) break;
      off += n;
    }
    if (off !== st.size) refuse(`changed while being read (${off} of ${st.size} bytes)`);
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}

function kindOf(st: fs.Stats): string {
  if (st.isFIFO()) return 'named pipe (FIFO)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'device';
  if (st.isSocket()) return 'socket';
  return 'special file';
}

/** The most bytes one input may take: a share of this machine's memory. */
export function memoryShare(): number {
  return Math.floor(os.totalmem() * MEMORY_SHARE);
}

export function mib(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}
