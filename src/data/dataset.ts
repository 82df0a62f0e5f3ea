/**
 * Binds the arrays of a data file to a model's inputs and checks them up front, so a shape or dtype
 * mistake is reported once, in the user's terms (array names, numpy fixes), instead of as an
 * onnxruntime error halfway through a measurement.
 */
import { UserError } from '../errors.js';
import { allocTypedArray, type NdArray, type NpyDtype, type TypedArray } from './npy.js';
import { readArrays } from './npz.js';
import { floatToHalf, halfToFloat } from '../onnx/tensor.js';

/** A model input as the ONNX graph declares it; string/null dims are symbolic or unknown (usually batch). */
export interface ModelInputSpec {
  name: string;
  dtype: NpyDtype;
  dims: (number | string | null)[];
}

/** One model input's data; dims include the batch (sample) axis first. */
export interface InputArray {
  dtype: NpyDtype;
  dims: number[];
  data: TypedArray;
}

export interface Dataset {
  path: string;
  count: number;
  /** keyed by model input name */
  inputs: Map<string, InputArray>;
  /** `count x labelWidth` values, row-major: class ids (width 1), or 0/1 per label (multi-label, width K) */
  labels: Int32Array | null;
  /** labels per sample: K for `y` of shape [N,K]; 1 (or absent) for [N] and [N,1] */
  labelWidth?: number;
}

const LABELS = 'y';
const SINGLE_INPUT = 'x';
const INTEGER_DTYPES: ReadonlySet<NpyDtype> = new Set(['int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64']);

/** `[batch,1,28,28]`; unknown dims print as `?`. */
export function describeDims(dims: readonly (number | string | null)[]): string {
  return `[${dims.map((d) => (d === null ? '?' : String(d))).join(',')}]`;
}

/** numpy spelling of a dtype for a suggested fix (np.bool only exists again since numpy 2). */
function npType(dtype: NpyDtype): string {
  return dtype === 'bool' ? 'np.bool_' : `np.${dtype}`;
}

export function loadDataset(
  path: string,
  model: ModelInputSpec[],
  opts: { requireLabels: boolean; modelPath?: string },
): Dataset {
  const modelName = opts.modelPath ?? 'the model';
  if (model.length === 0) {
    throw new UserError(`${modelName}: declares no graph inputs, so there is nothing to feed ${path} into; export the model with its inputs`);
  }
  const arrays = readArrays(path);
  const found = `found: ${[...arrays.keys()].map((k) => `'${k}'`).join(', ')}`;

  const bound: [ModelInputSpec, string, NdArray][] = [];
  if (model.length === 1) {
    const spec = model[0];
    // an array named like the input is the more specific match; 'y' is never taken, it holds the labels
    const name = spec.name !== LABELS && arrays.has(spec.name) ? spec.name : SINGLE_INPUT;
    const arr = arrays.get(name);
    if (!arr) {
      throw new UserError(
        `${path}: no array '${SINGLE_INPUT}' for model input '${spec.name}' (${found}); save the inputs as ${SINGLE_INPUT}=..., e.g. np.savez(path, x=inputs, y=labels)`,
      );
    }
    bound.push([spec, name, arr]);
  } else {
    const missing = model.filter((s) => !arrays.has(s.name)).map((s) => s.name);
    if (missing.length > 0) {
      const wanted = model.map((s) => `${s.name}=...`).join(', ');
      throw new UserError(
        `${path}: no array for model input${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')} (${found}); a model with several inputs needs one array per input name, e.g. np.savez(path, ${wanted}, y=labels)`,
      );
    }
    for (const spec of model) bound.push([spec, spec.name, arrays.get(spec.name)!]);
  }

  for (const [spec, name, arr] of bound) checkInput(path, spec, name, arr, modelName);
  for (const [, name, arr] of bound) checkFinite(path, name, arr);

  const [first, firstName, firstArr] = bound[0];
  const count = firstArr.shape[0];
  for (const [, name, arr] of bound) {
    if (arr.shape[0] !== count) {
      throw new UserError(
        `${path}: arrays disagree on the number of samples: '${firstName}' has ${count} but '${name}' has ${arr.shape[0]}; every input array needs the same first dimension`,
      );
    }
  }
  if (count < 1) {
    throw new UserError(`${path}: array '${firstName}' for model input '${first.name}' holds 0 samples; save at least one`);
  }

  const y = arrays.get(LABELS);
  let labels: Int32Array | null = null;
  let labelWidth = 1;
  if (y) ({ labels, width: labelWidth } = toLabels(path, y, count));
  else if (opts.requireLabels) {
    throw new UserError(`${path}: no label array '${LABELS}'; add y=labels (integer class ids) to the .npz`);
  }

  const inputs = new Map<string, InputArray>();
  for (const [spec, name, arr] of bound) inputs.set(spec.name, asModelType(path, name, arr, spec));
  return { path, count, inputs, labels, labelWidth };
}

const FLOAT_DTYPES_CONVERTIBLE: ReadonlySet<NpyDtype> = new Set(['float16', 'float32', 'float64']);

/** Whether data of `have` is fed to an input of `want` by converting it (float widths only). */
function convertible(have: NpyDtype, want: NpyDtype): boolean {
  return have !== want && FLOAT_DTYPES_CONVERTIBLE.has(have) && FLOAT_DTYPES_CONVERTIBLE.has(want);
}

/** float16 bits beyond the largest finite half (65504): the data does not fit the model's input type. */
const HALF_FINITE = 0x7c00;

/**
 * The array in the element type the model's input declares: float data of another width is converted
 * once here (a float16 model fed a float32 evaluation set runs on the float16-rounded values, as it
 * would in deployment), so every run feeds the model exactly the type it was exported with.
 */
function asModelType(path: string, name: string, arr: NdArray, spec: ModelInputSpec): InputArray {
  if (arr.dtype === spec.dtype) return { dtype: arr.dtype, dims: arr.shape, data: arr.data };
  const n = arr.data.length;
  const src = arr.dtype === 'float16' ? Float32Array.from(arr.data as Uint16Array, halfToFloat) : (arr.data as Float32Array | Float64Array);
  const out = allocTypedArray(spec.dtype, n);
  if (spec.dtype === 'float16') {
    const half = out as Uint16Array;
    for (let i = 0; i < n; i++) {
      half[i] = floatToHalf(src[i]);
      if ((half[i] & HALF_FINITE) === HALF_FINITE) {
        throw new UserError(`${path}: array '${name}' holds ${src[i]} at flat index ${i}, beyond the float16 range (±65504) of model input '${spec.name}'; scale the data as the model expects, or save it with ${name}.astype(np.float16) after clipping`);
      }
    }
  } else (out as Float32Array | Float64Array).set(src);
  return { dtype: spec.dtype, dims: arr.shape, data: out };
}

function checkInput(path: string, spec: ModelInputSpec, name: string, arr: NdArray, modelName: string): void {
  const subject = `${path}: array '${name}'`;
  if (arr.dtype !== spec.dtype && !convertible(arr.dtype, spec.dtype)) {
    throw new UserError(
      `${subject} has dtype ${arr.dtype} but model input '${spec.name}' expects ${spec.dtype}; save it with ${name}.astype(${npType(spec.dtype)})`,
    );
  }
  if (spec.dims.length === 0) {
    throw new UserError(
      `${modelName}: input '${spec.name}' is a scalar, so it has no batch axis to feed samples along; export the model with a batch dimension`,
    );
  }
  const mismatch = `${subject} has shape ${describeDims(arr.shape)} but model input '${spec.name}' expects ${describeDims(spec.dims)}`;
  if (arr.shape.length !== spec.dims.length) {
    throw new UserError(`${mismatch} (rank ${arr.shape.length} vs ${spec.dims.length}); ${reshapeFix(name, arr, spec)}`);
  }
  // axis 0 is the sample axis of the data file: a model exported with a fixed batch (often 1) is fed in
  // batches of that size, so the file's sample count is not held to it
  for (let axis = 1; axis < spec.dims.length; axis++) {
    const want = spec.dims[axis];
    if (typeof want === 'number' && want >= 0 && arr.shape[axis] !== want) {
      throw new UserError(`${mismatch} (axis ${axis}: ${arr.shape[axis]} vs ${want}); ${reshapeFix(name, arr, spec)}`);
    }
  }
}

const FLOAT_DTYPES: ReadonlySet<NpyDtype> = new Set(['float16', 'float32', 'float64']);

/** A NaN or Inf input makes every prediction on that sample (and accuracy) meaningless: refuse it by position. */
function checkFinite(path: string, name: string, arr: NdArray): void {
  if (!FLOAT_DTYPES.has(arr.dtype)) return;
  const data = arr.data as Float32Array | Float64Array | Uint16Array;
  const per = arr.shape.slice(1).reduce((a, d) => a * d, 1) || 1;
  const half = arr.dtype === 'float16';
  for (let i = 0; i < data.length; i++) {
    // float16 is stored as raw bits: exponent all ones is Inf or NaN
    const bad = half ? (data[i] & 0x7c00) === 0x7c00 : data[i] - data[i] !== 0;
    if (bad) {
      const what = half ? ((data[i] & 0x3ff) !== 0 ? 'NaN' : 'Inf') : Number.isNaN(data[i]) ? 'NaN' : 'Inf';
      const more = countNonFinite(data, half);
      throw new UserError(
        `${path}: array '${name}' holds ${what} at sample ${Math.floor(i / per)} (${more} non-finite value${more > 1 ? 's' : ''} in all); drop those samples or clean them, e.g. np.nan_to_num(${name})`,
      );
    }
  }
}

function countNonFinite(data: Float32Array | Float64Array | Uint16Array, half: boolean): number {
  let n = 0;
  for (let i = 0; i < data.length; i++) if (half ? (data[i] & 0x7c00) === 0x7c00 : data[i] - data[i] !== 0) n++;
  return n;
}

/** The exact numpy call when the sample size already matches, otherwise the shape to aim for. */
function reshapeFix(name: string, arr: NdArray, spec: ModelInputSpec): string {
  const rest = spec.dims.slice(1);
  if (arr.shape.length >= 1 && rest.every((d): d is number => typeof d === 'number' && d >= 0)) {
    const perSampleWanted = rest.reduce((a, d) => a * d, 1);
    const perSampleHave = arr.shape.slice(1).reduce((a, d) => a * d, 1);
    if (perSampleWanted === perSampleHave) return `save it with ${name}.reshape(${[-1, ...rest].join(', ')})`;
  }
  return `save it with shape ${describeDims(['N', ...rest])} (N samples first)`;
}

/** Multi-label targets may be saved as floats or booleans; their values must still be exactly 0 or 1. */
const LABEL_MATRIX_DTYPES: ReadonlySet<NpyDtype> = new Set([...INTEGER_DTYPES, 'bool', 'float16', 'float32', 'float64']);

/**
 * Class ids (`y` [N] or [N,1], integers) or a multi-label matrix (`y` [N,K], K > 1, values 0/1 of any
 * numeric type). Which one the model needs is decided against its output later; here only what the
 * file holds is checked.
 */
function toLabels(path: string, y: NdArray, count: number): { labels: Int32Array; width: number } {
  const subject = `${path}: label array '${LABELS}'`;
  const matrix = y.shape.length === 2 && y.shape[1] > 1;
  if (y.shape.length !== 1 && !(y.shape.length === 2 && y.shape[1] >= 1)) {
    throw new UserError(`${subject} has shape ${describeDims(y.shape)} but labels must be class ids [N], or a 0/1 matrix [N,K] for multi-label models; save it with y.reshape(len(y), -1) or y.reshape(-1)`);
  }
  if (!(matrix ? LABEL_MATRIX_DTYPES : INTEGER_DTYPES).has(y.dtype)) {
    throw new UserError(`${subject} has dtype ${y.dtype} but labels must be integer class ids; save it with y.astype(np.int64)`);
  }
  if (y.shape[0] !== count) {
    throw new UserError(`${subject} holds ${y.shape[0]} labels but the inputs hold ${count} samples; save one label per sample`);
  }
  const width = y.shape.length === 2 ? y.shape[1] : 1;
  const out = new Int32Array(count * width);
  const src = y.data;
  const half = y.dtype === 'float16';
  // one pass per element is fine here: labels are small next to the inputs
  for (let i = 0; i < out.length; i++) {
    const v = half ? halfToFloat(src[i] as number) : Number(src[i]);
    if (matrix && v !== 0 && v !== 1) {
      throw new UserError(`${subject} is a [N,K] matrix, read as multi-label targets, but holds ${v} at sample ${Math.floor(i / width)}, label ${i % width}; multi-label targets must be 0 or 1 (for one-hot class labels save y.argmax(axis=1))`);
    }
    if (v < 0 || v > 0x7fffffff || !Number.isInteger(v)) {
      throw new UserError(
        `${subject} has ${v < 0 ? 'negative' : 'out-of-range'} value ${String(src[i])} at index ${Math.floor(i / width)}; labels must be class ids 0..K-1`,
      );
    }
    out[i] = v;
  }
  return { labels: out, width };
}

function sampleSize(dims: number[]): number {
  let n = 1;
  for (let i = 1; i < dims.length; i++) n *= dims[i];
  return n;
}

/** Batch [start, end) as views into the data set (no copy), e.g. for feeding onnxruntime batch by batch. */
export function sliceBatch(ds: Dataset, start: number, end: number): Map<string, InputArray> {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > ds.count || start >= end) {
    throw new RangeError(`sliceBatch: [${start}, ${end}) is not a non-empty range within 0..${ds.count}`);
  }
  const out = new Map<string, InputArray>();
  for (const [name, arr] of ds.inputs) {
    const per = sampleSize(arr.dims);
    out.set(name, {
      dtype: arr.dtype,
      dims: [end - start, ...arr.dims.slice(1)],
      data: arr.data.subarray(start * per, end * per),
    });
  }
  return out;
}

/** A copied subset (indices may repeat or be in any order), so it outlives and never aliases `ds`. */
export function takeSamples(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const n = indices.length;
  if (n === 0) throw new RangeError('takeSamples: no indices; a data set holds at least one sample');
  for (let k = 0; k < n; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= ds.count) {
      throw new RangeError(`takeSamples: index ${i} at position ${k} is outside 0..${ds.count - 1}`);
    }
  }
  const inputs = new Map<string, InputArray>();
  for (const [name, arr] of ds.inputs) {
    const per = sampleSize(arr.dims);
    const data = allocTypedArray(arr.dtype, n * per);
    for (let k = 0; k < n; k++) {
      const i = indices[k];
      copySample(data, k * per, arr.data, i * per, per);
    }
    inputs.set(name, { dtype: arr.dtype, dims: [n, ...arr.dims.slice(1)], data });
  }
  let labels: Int32Array | null = null;
  const w = ds.labelWidth ?? 1;
  if (ds.labels) {
    labels = new Int32Array(n * w);
    for (let k = 0; k < n; k++) labels.set(ds.labels.subarray(indices[k] * w, (indices[k] + 1) * w), k * w);
  }
  return { path: ds.path, count: n, inputs, labels, ...(ds.labelWidth !== undefined ? { labelWidth: ds.labelWidth } : {}) };
}

// TypedArray is a union, so TS cannot prove dst.set(src) pairs matching element types; both come from
// the same dtype here, and copying via bytes sidesteps the bigint/number split as well
function copySample(dst: TypedArray, dstIndex: number, src: TypedArray, srcIndex: number, length: number): void {
  const size = src.BYTES_PER_ELEMENT;
  new Uint8Array(dst.buffer, dst.byteOffset + dstIndex * size, length * size).set(
    new Uint8Array(src.buffer, src.byteOffset + srcIndex * size, length * size),
  );
}
