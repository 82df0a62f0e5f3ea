import * as fs from 'node:fs';
import { unzipSync } from 'fflate';

/**
 * A data array as the reference evaluator sees it: every element widened to a float64 (exact for
 * float16/float32 and for integers below 2^53), plus whether numpy stored it as integers.
 */
export interface PlainArray {
  shape: number[];
  integer: boolean;
  values: Float64Array;
}

/** IEEE half-precision bits -> number. */
export function halfToNumber(bits: number): number {
  const e = (bits >> 10) & 31;
  const f = bits & 1023;
  const magnitude = e === 0 ? f * 2 ** -24 : e === 31 ? (f === 0 ? Infinity : NaN) : 2 ** (e - 15) * (1 + f / 1024);
  return bits & 0x8000 ? -magnitude : magnitude;
}

/**
 * number -> IEEE half-precision bits, rounded to nearest even. Done with arithmetic on the spacing of
 * halves rather than bit tricks; exact for values that are float32 (as data arrays are).
 */
export function numberToHalf(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  if (a >= 65520) return sign | 0x7c00; // at or past halfway above 65504, the largest half
  let exponent = a < 2 ** -14 ? -14 : Math.floor(Math.log2(a));
  if (exponent > -14 && 2 ** exponent > a) exponent--; // log2 may round up just below a power of two
  if (2 ** (exponent + 1) <= a) exponent++;
  const steps = a / 2 ** (exponent - 10); // halves are 2^(exponent-10) apart here; the division is exact
  const below = Math.floor(steps);
  const rest = steps - below;
  let m = rest > 0.5 || (rest === 0.5 && below % 2 === 1) ? below + 1 : below;
  if (m < 1024) return sign | m; // subnormal: exponent field 0
  if (m === 2048) {
    m = 1024;
    exponent++;
  }
  return exponent > 15 ? sign | 0x7c00 : sign | ((exponent + 15) << 10) | (m - 1024);
}

/** bfloat16 bits -> number (the upper half of a float32). */
export function bfloat16ToNumber(bits: number): number {
  return new Float32Array(new Uint32Array([bits << 16]).buffer)[0];
}

const READERS: Record<string, { bytes: number; read: (v: DataView, at: number) => number }> = {
  f8: { bytes: 8, read: (v, at) => v.getFloat64(at, true) },
  f4: { bytes: 4, read: (v, at) => v.getFloat32(at, true) },
  f2: { bytes: 2, read: (v, at) => halfToNumber(v.getUint16(at, true)) },
  i8: { bytes: 8, read: (v, at) => Number(v.getBigInt64(at, true)) },
  i4: { bytes: 4, read: (v, at) => v.getInt32(at, true) },
  i2: { bytes: 2, read: (v, at) => v.getInt16(at, true) },
  i1: { bytes: 1, read: (v, at) => v.getInt8(at) },
  u1: { bytes: 1, read: (v, at) => v.getUint8(at) },
  b1: { bytes: 1, read: (v, at) => v.getUint8(at) },
};

function parseMember(name: string, raw: Uint8Array): PlainArray {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const major = raw[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(raw.subarray(start, start + headerLength));
  const descr = /'descr':\s*'([<>|=])(\w\d)'/.exec(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shapeText || /'fortran_order':\s*True/.test(header)) throw new Error(`${name}: unsupported .npy header ${header}`);
  if (descr[1] === '>') throw new Error(`${name}: big-endian arrays are not supported`);
  const reader = READERS[descr[2]];
  if (!reader) throw new Error(`${name}: dtype ${descr[2]} is not supported by the reference reader`);
  const shape = shapeText[1].split(',').filter((s) => s.trim() !== '').map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const values = new Float64Array(count);
  const base = start + headerLength;
  for (let i = 0; i < count; i++) values[i] = reader.read(view, base + i * reader.bytes);
  return { shape, integer: /^[iub]/.test(descr[2]), values };
}

/** Every array of a NumPy .npz archive, by name. */
export function readNpzPlain(file: string): Map<string, PlainArray> {
  const members = unzipSync(fs.readFileSync(file));
  const out = new Map<string, PlainArray>();
  for (const [member, raw] of Object.entries(members)) {
    if (member.endsWith('.npy')) out.set(member.slice(0, -4), parseMember(`${file}:${member}`, raw));
  }
  return out;
}
