import * as ort from 'onnxruntime-node';
import { bfloat16ToNumber, halfToNumber, numberToHalf, readNpzPlain, type PlainArray } from './referenceNpz.js';

/**
 * Reference numbers computed the plainest possible way, sharing no code with src/: one onnxruntime
 * session with default options, the whole data set in float64, one loop per metric. What kind of output
 * a model has (logits, probabilities, ...) is told by the caller, never read from the graph, so a bug in
 * how src/ recognises outputs cannot hide here.
 */

/** logits: raw scores; probs: softmax probabilities; logprobs: log-softmax; sigmoid: independent probabilities per label. */
export type OutputKind = 'logits' | 'probs' | 'logprobs' | 'sigmoid';

/** Probabilities are clamped here before the log, as fixtures/make_export_fixtures.py does. */
export const P_FLOOR = 1e-12;
export const SIGMOID_THRESHOLD = 0.5;

export type DataSource = string | Map<string, PlainArray>;

export interface Outputs {
  /** samples evaluated */
  n: number;
  /** the batch the model ran at (its declared batch when fixed) */
  batch: number;
  byName: Map<string, { type: string; sampleShape: number[]; values: Float64Array }>;
}

function loadData(data: DataSource): Map<string, PlainArray> {
  return typeof data === 'string' ? readNpzPlain(data) : data;
}

function tensorFor(type: string, values: Float64Array, dims: number[]): ort.Tensor {
  switch (type) {
    case 'float32':
      return new ort.Tensor('float32', Float32Array.from(values), dims);
    case 'float16':
      return new ort.Tensor('float16', Uint16Array.from(values, numberToHalf), dims);
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(values), dims);
    case 'int64':
      return new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(values), dims);
    default:
      throw new Error(`reference evaluator: model input type ${type} is not supported`);
  }
}

function decode(t: ort.Tensor): Float64Array {
  const out = new Float64Array(t.size);
  const data = t.data as ArrayLike<number | bigint>;
  if (t.type === 'float16') for (let i = 0; i < out.length; i++) out[i] = halfToNumber(data[i] as number);
  // onnxruntime-node 1.30 rejects bfloat16 tensors outright, but a binding that returns them gives their bits
  else if ((t.type as string) === 'bfloat16') for (let i = 0; i < out.length; i++) out[i] = bfloat16ToNumber(data[i] as number);
  else for (let i = 0; i < out.length; i++) out[i] = Number(data[i]);
  return out;
}

/**
 * Every output of the model on every sample of the data: inputs are taken by name from the archive (or
 * `x` for a one-input model) and cast to the input's declared element type; a model with a fixed batch
 * runs at that batch, the last chunk padded with copies of the last sample whose outputs are dropped.
 */
export async function referenceOutputs(modelPath: string, data: DataSource, opts: { batch?: number } = {}): Promise<Outputs> {
  const arrays = loadData(data);
  const session = await ort.InferenceSession.create(modelPath);
  try {
    const inputs = session.inputMetadata.map((meta) => {
      if (!meta.isTensor) throw new Error(`${modelPath}: input ${meta.name} is not a tensor`);
      const array = arrays.get(meta.name) ?? (session.inputNames.length === 1 ? arrays.get('x') : undefined);
      if (!array) throw new Error(`${modelPath}: data has no array for input ${meta.name}`);
      return { name: meta.name, type: meta.type, fixed: typeof meta.shape[0] === 'number' ? (meta.shape[0] as number) : 0, array };
    });
    const n = inputs[0].array.shape[0];
    const fixed = inputs.find((i) => i.fixed > 0)?.fixed;
    const batch = fixed ?? opts.batch ?? 256;
    const chunks = new Map<string, { type: string; dims: readonly number[]; parts: Float64Array[] }>();
    for (let start = 0; start < n; start += batch) {
      const rows = Math.min(batch, n - start);
      const feeds: Record<string, ort.Tensor> = {};
      for (const input of inputs) {
        const row = input.array.values.length / n;
        const values = new Float64Array(batch === rows || !fixed ? rows * row : batch * row);
        values.set(input.array.values.subarray(start * row, (start + rows) * row));
        for (let pad = rows; pad < values.length / row; pad++) values.set(input.array.values.subarray((n - 1) * row, n * row), pad * row);
        feeds[input.name] = tensorFor(input.type, values, [values.length / row, ...input.array.shape.slice(1)]);
      }
      const result = await session.run(feeds);
      for (const name of session.outputNames) {
        const t = result[name];
        const all = decode(t);
        const perSample = all.length / t.dims[0];
        const entry = chunks.get(name) ?? { type: t.type, dims: t.dims, parts: [] };
        entry.parts.push(all.subarray(0, rows * perSample));
        chunks.set(name, entry);
      }
    }
    const byName = new Map<string, { type: string; sampleShape: number[]; values: Float64Array }>();
    for (const [name, { type, dims, parts }] of chunks) {
      const values = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
      let at = 0;
      for (const p of parts) {
        values.set(p, at);
        at += p.length;
      }
      byName.set(name, { type, sampleShape: dims.slice(1).map(Number), values });
    }
    return { n, batch, byName };
  } finally {
    await session.release();
  }
}

export interface EvalResult {
  n: number;
  batch: number;
  /** element type onnxruntime returned for the scored output */
  outputType: string;
  /** classes: top-1 accuracy; sigmoid: mean over every (sample, label) decision at p >= 0.5 */
  accuracy: number;
  /** mean negative log-likelihood: cross-entropy for classes, binary cross-entropy per label for sigmoid */
  nll: number;
  /** sigmoid only: accuracy of each label */
  perLabel?: number[];
  /** classes: predicted class per sample; sigmoid: 0/1 per (sample, label) */
  pred: number[];
}

export interface EvalOptions {
  output: OutputKind;
  /** output to score; the first one when omitted */
  outputName?: string;
  batch?: number;
}

function scoreClasses(kind: OutputKind, values: Float64Array, width: number, labels: Float64Array): Omit<EvalResult, 'n' | 'batch' | 'outputType'> {
  const n = labels.length;
  if (values.length !== n * width) throw new Error(`output has ${values.length / width} rows for ${n} labels`);
  const pred: number[] = [];
  let hits = 0;
  let nll = 0;
  for (let i = 0; i < n; i++) {
    const row = values.subarray(i * width, (i + 1) * width);
    let best = 0;
    for (let k = 1; k < width; k++) if (row[k] > row[best]) best = k;
    pred.push(best);
    const y = labels[i];
    if (best === y) hits++;
    if (kind === 'logits') {
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      nll += max + Math.log(sum) - row[y];
    } else if (kind === 'probs') nll -= Math.log(Math.max(row[y], P_FLOOR));
    else nll -= row[y];
  }
  return { accuracy: hits / n, nll: nll / n, pred };
}

function scoreSigmoid(values: Float64Array, labels: PlainArray): Omit<EvalResult, 'n' | 'batch' | 'outputType'> {
  const n = labels.shape[0];
  const k = labels.values.length / n;
  if (values.length !== labels.values.length) throw new Error(`sigmoid output has ${values.length} values for ${labels.values.length} labels`);
  const hitsPerLabel = new Array<number>(k).fill(0);
  const pred: number[] = [];
  let nll = 0;
  for (let i = 0; i < values.length; i++) {
    const p = values[i];
    const y = labels.values[i];
    const decided = p >= SIGMOID_THRESHOLD ? 1 : 0;
    pred.push(decided);
    if (decided === y) hitsPerLabel[i % k]++;
    const q = Math.min(Math.max(p, P_FLOOR), 1 - P_FLOOR);
    nll -= y === 1 ? Math.log(q) : Math.log(1 - q);
  }
  const perLabel = hitsPerLabel.map((h) => h / n);
  return { accuracy: hitsPerLabel.reduce((a, b) => a + b, 0) / values.length, nll: nll / values.length, perLabel, pred };
}

/** Accuracy and mean NLL of one output of a model on labelled data (`y` in the archive). */
export async function referenceEval(modelPath: string, data: DataSource, opts: EvalOptions): Promise<EvalResult> {
  const arrays = loadData(data);
  const labels = arrays.get('y');
  if (!labels) throw new Error('reference evaluator: data has no labels y');
  const outputs = await referenceOutputs(modelPath, arrays, { batch: opts.batch });
  const name = opts.outputName ?? [...outputs.byName.keys()][0];
  const out = outputs.byName.get(name);
  if (!out) throw new Error(`${modelPath}: no output ${name}`);
  const width = out.sampleShape.reduce((a, b) => a * b, 1);
  const scored = opts.output === 'sigmoid' ? scoreSigmoid(out.values, labels) : scoreClasses(opts.output, out.values, width, labels.values);
  return { n: outputs.n, batch: outputs.batch, outputType: out.type, ...scored };
}

/** Top-1 accuracy of a logits (or probabilities) output: the number the ledger's dense accuracy must match. */
export async function referenceAccuracy(modelPath: string, dataPath: string): Promise<{ accuracy: number; pred: number[] }> {
  const { accuracy, pred } = await referenceEval(modelPath, dataPath, { output: 'logits' });
  return { accuracy, pred };
}

export interface OutputFidelity {
  /** mean over samples of the cosine similarity between the two models' flattened outputs for that sample */
  cosine: number;
  /** ||other - dense||_2 / ||dense||_2 over every element of the output */
  relL2: number;
  /** largest |other - dense| over every element */
  maxAbs: number;
  /** class-like outputs only: fraction of rows (over all leading axes) whose argmax along the last axis agrees */
  top1Agreement?: number;
}

/**
 * How closely `other` reproduces `dense`, output by output (matched by name), on the same inputs. Pass the
 * names of class-like outputs (scores over classes on the last axis) in `classLike` for top-1 agreement.
 */
export async function referenceFidelity(
  densePath: string,
  otherPath: string,
  data: DataSource,
  opts: { classLike?: readonly string[]; batch?: number } = {},
): Promise<Map<string, OutputFidelity>> {
  const arrays = loadData(data);
  const dense = await referenceOutputs(densePath, arrays, opts);
  const other = await referenceOutputs(otherPath, arrays, opts);
  const result = new Map<string, OutputFidelity>();
  for (const [name, a] of dense.byName) {
    const b = other.byName.get(name);
    if (!b) throw new Error(`${otherPath}: has no output ${name}`);
    if (b.values.length !== a.values.length) throw new Error(`output ${name}: ${a.values.length} vs ${b.values.length} values`);
    const per = a.values.length / dense.n;
    let cosineSum = 0;
    let diff2 = 0;
    let norm2 = 0;
    let maxAbs = 0;
    for (let s = 0; s < dense.n; s++) {
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let i = s * per; i < (s + 1) * per; i++) {
        dot += a.values[i] * b.values[i];
        na += a.values[i] * a.values[i];
        nb += b.values[i] * b.values[i];
        const d = b.values[i] - a.values[i];
        diff2 += d * d;
        maxAbs = Math.max(maxAbs, Math.abs(d));
      }
      norm2 += na;
      // two all-zero vectors are identical; one zero vector against a non-zero one shares no direction
      cosineSum += na === 0 && nb === 0 ? 1 : na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
    }
    const entry: OutputFidelity = { cosine: cosineSum / dense.n, relL2: norm2 === 0 ? Math.sqrt(diff2) : Math.sqrt(diff2 / norm2), maxAbs };
    if (opts.classLike?.includes(name)) {
      const width = a.sampleShape[a.sampleShape.length - 1] ?? 1;
      const rows = a.values.length / width;
      let agree = 0;
      for (let r = 0; r < rows; r++) {
        let ia = 0;
        let ib = 0;
        for (let k = 1; k < width; k++) {
          if (a.values[r * width + k] > a.values[r * width + ia]) ia = k;
          if (b.values[r * width + k] > b.values[r * width + ib]) ib = k;
        }
        if (ia === ib) agree++;
      }
      entry.top1Agreement = agree / rows;
    }
    result.set(name, entry);
  }
  return result;
}

