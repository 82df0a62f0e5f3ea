/**
 * Reader/writer for NumPy's .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
 *
 * Input files come from users and are fuzzed, so every malformed byte sequence must end in a UserError
 * (never a RangeError from a typed-array constructor or an out-of-memory from a lying header).
 */
import { UserError } from '../errors.js';

export type NpyDtype =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'bool';

export type TypedArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | Uint32Array;

/** float16 is kept as raw Uint16Array bits (JS has no Float16Array in Node 20); bool as Uint8Array 0/1. */
export interface NdArray {
  dtype: NpyDtype;
  shape: number[];
  data: TypedArray;
}

interface DtypeInfo {
  /** numpy's type-kind letter + item size, as in `descr` without the byte-order character */
  code: string;
  size: 1 | 2 | 4 | 8;
  make: (buffer: ArrayBuffer, byteOffset: number, length: number) => TypedArray;
}

const DTYPES: Record<NpyDtype, DtypeInfo> = {
  float32: { code: 'f4', size: 4, make: (b, o, n) => new Float32Array(b, o, n) },
  float64: { code: 'f8', size: 8, make: (b, o, n) => new Float64Array(b, o, n) },
  float16: { code: 'f2', size: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  int64: { code: 'i8', size: 8, make: (b, o, n) => new BigInt64Array(b, o, n) },
  int32: { code: 'i4', size: 4, make: (b, o, n) => new Int32Array(b, o, n) },
  int16: { code: 'i2', size: 2, make: (b, o, n) => new Int16Array(b, o, n) },
  int8: { code: 'i1', size: 1, make: (b, o, n) => new Int8Array(b, o, n) },
  uint8: { code: 'u1', size: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  uint16: { code: 'u2', size: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  uint32: { code: 'u4', size: 4, make: (b, o, n) => new Uint32Array(b, o, n) },
  uint64: { code: 'u8', size: 8, make: (b, o, n) => new BigUint64Array(b, o, n) },
  bool: { code: 'b1', size: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
};

const BY_CODE = new Map<string, NpyDtype>(
  (Object.keys(DTYPES) as NpyDtype[]).map((d) => [DTYPES[d].code, d]),
);

export const NPY_DTYPES: readonly NpyDtype[] = Object.keys(DTYPES) as NpyDtype[];

export function dtypeItemSize(dtype: NpyDtype): number {
  return DTYPES[dtype].size;
}

/** A zero-filled typed array of the class `NdArray.data` uses for `dtype`. */
export function allocTypedArray(dtype: NpyDtype, length: number): TypedArray {
  const info = DTYPES[dtype];
  return info.make(new ArrayBuffer(length * info.size), 0, length);
}

/** Whether `data` is the typed-array class this module uses for `dtype` (float16 and uint16 share one). */
export function matchesDtype(dtype: NpyDtype, data: TypedArray): boolean {
  return data.constructor === allocTypedArray(dtype, 0).constructor;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
// numpy aligns the data start to 64 bytes so the array can be memory-mapped for any dtype
const ARRAY_ALIGN = 64;
// numpy refuses headers over 10 kB by default; structured dtypes are the only reason for big ones and we
// don't read those, so 1 MiB is generous and keeps a lying header-length field from costing anything
const MAX_HEADER_LEN = 1 << 20;
const GROWTH_AXIS_MAX_DIGITS = 21;
// NPY_MAXDIMS is 64 in numpy 2 (32 before)
const MAX_RANK = 64;
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const RESAVE = 're-save it with np.save (or np.savez for an archive)';

/** Arrays at least this big are returned as views into the parsed bytes when aligned (see parseNpy). */
const VIEW_MIN_BYTES = 1 << 20;

export function parseNpy(bytes: Uint8Array, where: string): NdArray {
  const fail = (problem: string, fix: string = RESAVE): never => {
    throw new UserError(`${where}: ${problem}; ${fix}`);
  };

  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    fail('not a NumPy .npy file (bad magic bytes)', 'save the array with np.save');
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (!(major === 1 || major === 2 || major === 3) || minor !== 0) {
    fail(`.npy format version ${major}.${minor} is not supported (only 1.0, 2.0 and 3.0)`);
  }
  const lenBytes = major === 1 ? 2 : 4;
  const headerStart = 8 + lenBytes;
  if (bytes.length < headerStart) fail('file ends inside the header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerLen > MAX_HEADER_LEN) fail(`absurd header length of ${headerLen} bytes`);
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) {
    fail(`truncated: the header claims ${headerLen} bytes but the file ends after ${bytes.length - headerStart}`);
  }

  // version 3.0 only differs from 2.0 by allowing UTF-8 in field names; ASCII headers decode the same either way
  const headerText = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));
  let header: unknown;
  try {
    header = parsePyLiteral(headerText);
  } catch (e) {
    fail(`unreadable header (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isDict(header)) fail('unreadable header (not a dict)');
  const h = header as Map<unknown, unknown>;

  const descr = h.get('descr');
  const fortran = h.get('fortran_order');
  const shapeVal = h.get('shape');
  if (descr === undefined || fortran === undefined || shapeVal === undefined) {
    fail("incomplete header (needs 'descr', 'fortran_order' and 'shape')");
  }
  if (Array.isArray(descr)) {
    fail('structured (record) dtype, which prune-guard cannot read', 'save each field as its own plain array');
  }
  if (typeof descr !== 'string') fail("unreadable header ('descr' is not a string)");
  const { dtype, swap } = decodeDescr(descr as string, fail);

  if (typeof fortran !== 'boolean') fail("unreadable header ('fortran_order' is not True/False)");
  if (fortran) {
    fail(
      'array is stored in Fortran (column-major) order',
      're-save it in C order: np.save(path, np.ascontiguousarray(arr)) (or pass np.ascontiguousarray(arr) to np.savez)',
    );
  }

  const shape = decodeShape(shapeVal, fail);
  const itemSize = DTYPES[dtype].size;
  const available = bytes.length - dataStart;
  // stop multiplying once past the bytes on hand: a lying shape can then neither leave the exact-integer
  // range of doubles nor make us allocate anything
  let count = shape.includes(0) ? 0 : 1;
  for (const d of shape) {
    if (count * itemSize > available) break;
    count *= d;
  }
  const needed = count * itemSize;
  if (needed > available) {
    const claimed = shape.reduce((a, d) => a * d, 1) * itemSize;
    fail(
      `truncated: shape ${describeShape(shape)} of ${dtype} needs ${Number.isFinite(claimed) && claimed <= Number.MAX_SAFE_INTEGER ? claimed : 'more than 2^53'} bytes but only ${available} follow the header`,
    );
  }
  if (needed < available) {
    fail(`${available - needed} unexpected bytes after the data for shape ${describeShape(shape)} of ${dtype}`);
  }

  // a big little-endian array whose data is already aligned is viewed in place: an .npz member is its
  // own buffer and numpy pads headers to 64 bytes, so evaluation data is not held twice. Small arrays
  // may sit in Node's shared Buffer pool (under 4 KiB), so they are still copied
  const start = bytes.byteOffset + dataStart;
  if (!(swap && itemSize > 1) && needed >= VIEW_MIN_BYTES && start % itemSize === 0) {
    return { dtype, shape, data: DTYPES[dtype].make(bytes.buffer as ArrayBuffer, start, count) };
  }
  // otherwise copy into a fresh ArrayBuffer at offset 0 so the typed array is aligned whatever `bytes`
  // was; not bytes.slice(), which on a Node Buffer (what readFileSync returns) is a view into a shared pool
  const copy = new Uint8Array(needed);
  copy.set(bytes.subarray(dataStart, dataStart + needed));
  if (swap && itemSize > 1) swapBytesInPlace(copy, itemSize);
  return { dtype, shape, data: DTYPES[dtype].make(copy.buffer, 0, count) };
}

export function encodeNpy(arr: NdArray): Uint8Array {
  const info = DTYPES[arr.dtype];
  if (!info) throw new Error(`encodeNpy: unknown dtype ${String(arr.dtype)}`);
  const count = arr.shape.reduce((a, d) => a * d, 1);
  if (arr.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new Error(`encodeNpy: invalid shape ${describeShape(arr.shape)}`);
  }
  if (arr.data.length !== count || !matchesDtype(arr.dtype, arr.data)) {
    throw new Error(
      `encodeNpy: ${arr.data.constructor.name}(${arr.data.length}) does not hold ${arr.dtype} ${describeShape(arr.shape)}`,
    );
  }
  const order = info.size === 1 ? '|' : '<';
  // numpy's repr of a shape tuple: (), (3,), (2, 3)
  const shapeRepr = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let header = `{'descr': '${order}${info.code}', 'fortran_order': False, 'shape': ${shapeRepr}, }`;
  // np.save leaves room to rewrite the header in place when axis 0 grows; copying that keeps our files
  // byte-identical to numpy's, which makes them easy to diff and hash
  if (arr.shape.length > 0) header += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(arr.shape[0]).length));
  let major = 1;
  let prefix = 10;
  let padded = pad(header, prefix);
  if (padded.length > 0xffff) {
    major = 2;
    prefix = 12;
    padded = pad(header, prefix);
  }
  header = padded;

  const dataBytes = count * info.size;
  const out = new Uint8Array(prefix + header.length + dataBytes);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  const body = out.subarray(prefix + header.length);
  body.set(new Uint8Array(arr.data.buffer, arr.data.byteOffset, dataBytes));
  if (!HOST_LITTLE_ENDIAN && info.size > 1) swapBytesInPlace(body, info.size);
  return out;
}

function pad(header: string, prefix: number): string {
  return header + ' '.repeat(ARRAY_ALIGN - ((prefix + header.length + 1) % ARRAY_ALIGN)) + '\n';
}

/** `[2,3]` style, as used in error messages. */
function describeShape(shape: number[]): string {
  return `[${shape.join(',')}]`;
}

function decodeDescr(descr: string, fail: (problem: string, fix?: string) => never): { dtype: NpyDtype; swap: boolean } {
  const m = /^([<>|=]?)([a-zA-Z?])(\d*)$/.exec(descr);
  if (m && m[2] === 'O') {
    fail(
      "array holds Python objects (dtype 'O'), which can only be read with pickle",
      'convert it to a numeric array first, e.g. np.asarray(arr, dtype=np.float32)',
    );
  }
  const dtype = m ? BY_CODE.get(m[2] + m[3]) : undefined;
  if (!m || dtype === undefined) {
    return fail(
      `unsupported dtype '${descr.slice(0, 40)}' (supported: ${NPY_DTYPES.join(', ')})`,
      'convert it first, e.g. arr.astype(np.float32)',
    );
  }
  // '|' means "byte order not applicable" and '=' means native; both are read as stored
  const fileLittle = m[1] === '<' ? true : m[1] === '>' ? false : HOST_LITTLE_ENDIAN;
  return { dtype, swap: fileLittle !== HOST_LITTLE_ENDIAN };
}

function decodeShape(value: unknown, fail: (problem: string, fix?: string) => never): number[] {
  if (!Array.isArray(value) || !(value as PyTuple)[TUPLE]) fail("unreadable header ('shape' is not a tuple)");
  const dims = value as unknown[];
  if (dims.length > MAX_RANK) fail(`shape has ${dims.length} dimensions (at most ${MAX_RANK} are possible)`);
  return dims.map((d, axis) => {
    if (typeof d !== 'bigint') return fail(`non-integer size on axis ${axis} of the shape`);
    if (d < 0n) return fail(`negative size (${d}) on axis ${axis} of the shape`);
    if (d > BigInt(Number.MAX_SAFE_INTEGER)) return fail(`absurd size (${d}) on axis ${axis} of the shape`);
    return Number(d);
  });
}

/** `bytes` must be 4-byte aligned in its buffer (parseNpy copies to offset 0; encodeNpy data starts at 64). */
function swapBytesInPlace(bytes: Uint8Array, size: number): void {
  // whole-word shifts instead of a byte loop: ~4x fewer iterations on the 50 MB inputs this has to handle
  if (size === 2) {
    const w = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 1);
    for (let i = 0; i < w.length; i++) w[i] = ((w[i] & 0xff) << 8) | (w[i] >>> 8);
    return;
  }
  const w = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
  const bswap = (x: number): number => ((x << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
  if (size === 4) {
    for (let i = 0; i < w.length; i++) w[i] = bswap(w[i]);
    return;
  }
  for (let i = 0; i + 1 < w.length; i += 2) {
    const lo = w[i];
    w[i] = bswap(w[i + 1]);
    w[i + 1] = bswap(lo);
  }
}

// ------------------------------------------------------------------------------------------------------
// A tiny parser for the Python literal numpy writes as the header (`repr` of a dict). numpy itself uses
// ast.literal_eval; a regex would accept keys inside strings and miss duplicates, and eval is out of the
// question for untrusted files. Integers are parsed as bigint so absurd dims are detected, not rounded.

const TUPLE = Symbol('tuple');
type PyTuple = unknown[] & { [TUPLE]?: true };
const MAX_DEPTH = 16; // numpy headers nest at most 3 levels; this keeps fuzzed input off the call stack

function isDict(v: unknown): v is Map<unknown, unknown> {
  return v instanceof Map;
}

function parsePyLiteral(text: string): unknown {
  let pos = 0;
  const err = (what: string): never => {
    throw new Error(`${what} at offset ${pos}`);
  };
  const skipWs = (): void => {
    while (pos < text.length && ' \t\r\n'.includes(text[pos])) pos++;
  };
  const value = (depth: number): unknown => {
    if (depth > MAX_DEPTH) err('nesting too deep');
    skipWs();
    const c = text[pos];
    if (c === '{' || c === '(' || c === '[') return container(c, depth);
    if (c === "'" || c === '"') return str(c);
    const m = /^(?:[-+]?\d+L?|True|False|None)/.exec(text.slice(pos, pos + 32));
    if (!m) return err('unexpected character');
    pos += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return BigInt(m[0].replace('L', '')); // py2-era numpy wrote longs as 3L
  };
  const str = (quote: string): string => {
    pos++;
    let s = '';
    while (pos < text.length && text[pos] !== quote) {
      if (text[pos] === '\\') pos++;
      s += text[pos] ?? '';
      pos++;
    }
    if (pos >= text.length) err('unterminated string');
    pos++;
    return s;
  };
  const container = (open: string, depth: number): unknown => {
    const close = open === '{' ? '}' : open === '(' ? ')' : ']';
    pos++;
    const items: unknown[] = [];
    const dict = new Map<unknown, unknown>();
    let sawComma = false;
    for (;;) {
      skipWs();
      if (text[pos] === close) {
        pos++;
        break;
      }
      if (pos >= text.length) err(`missing '${close}'`);
      if (open === '{') {
        const key = value(depth + 1);
        skipWs();
        if (text[pos] !== ':') err("expected ':'");
        pos++;
        if (dict.has(key)) err(`duplicate key ${String(key)}`);
        dict.set(key, value(depth + 1));
      } else {
        items.push(value(depth + 1));
      }
      skipWs();
      if (text[pos] === ',') {
        pos++;
        sawComma = true;
      } else if (text[pos] !== close) {
        err(`expected ',' or '${close}'`);
      }
    }
    if (open === '{') return dict;
    // (3) is just 3 in Python; only (3,) is a 1-tuple
    if (open === '(' && items.length === 1 && !sawComma) return items[0];
    if (open === '(') (items as PyTuple)[TUPLE] = true;
    return items;
  };

  const v = value(0);
  skipWs();
  if (pos !== text.length) err('trailing characters');
  return v;
}
