import { takeSamples, type Dataset } from '../data/dataset.js';
import { GraphIndex } from '../onnx/graph.js';
import { ModelEditor } from '../onnx/edit.js';
import type { ModelProto, NodeProto } from '../onnx/proto/onnx_pb.js';
import { tensorToFloat32 } from '../onnx/tensor.js';
import { inverseHessian, matmul } from './linalg.js';
import { linearLayer, setWeightRows, weightRows, type LinearLayer } from './layers.js';
import { adaptiveMaskSweep, fixedMaskSweep } from './obs.js';
import { CROSS_VALIDATE_MAX_COLS, crossValidatedDamp, crossValidatedDampDual, DUAL_MAX_PATCHES } from './ridge.js';
import { gatedRowErrors, reluGate, reluRefit, type ReluGate } from './reluTarget.js';
import type { KeptChannels } from '../prune/structured/keptChannels.js';
import { PatchSampler } from './patches.js';
import { sessionFromModel, streamActivations } from '../onnx/runtime/session.js';
import { crossGram, timesTransposed } from '../onnx/runtime/gemm.js';
import { captureSamplesThatFit, columnBlocks, macsBefore, nodeMacsOf, refitBytes, refitFlops } from './bounds.js';
import { SOLVE_MACS_PER_FLOP, type SafetyStop, type WorkMeter } from './work.js';
import { boundedBatch } from '../onnx/runtime/activationBudget.js';
import { graphUpTo } from '../onnx/subgraph.js';
import type { LayerSkip } from './refusals.js';

export interface ReconstructOptions {
  /** ridge added to H's diagonal, as a fraction of its mean diagonal (SparseGPT uses 0.01) */
  damp: number;
  /** choose the damp per layer (and column block) from DAMP_GRID by two-fold cross-validation instead */
  crossValidate: boolean;
  /** fit and judge layers followed by [BatchNormalization ->] Relu on what passes the ReLU */
  reluAware: boolean;
  /** most input patches (rows of X) per layer */
  maxPatches: number;
  /** wider layers are refit in independent column blocks of at most this many columns */
  maxBlock: number;
  threads: number;
  /** recovery's work allowance: a layer is refit only when its estimated capture and solve fit what is left */
  work?: WorkMeter;
  /** the wall-clock safety stop: once passed, no further layer is refit and the result says so */
  stop?: SafetyStop;
  /**
   * structured pruning's kept-channel map (dense indices per sliced initializer and axis): a layer
   * whose output channels were removed is refit to the dense layer's output at the channels it kept
   */
  kept?: KeptChannels;
  /**
   * unstructured only: re-choose the mask inside the OBS sweep (SparseGPT's adaptive selection) in
   * blocks of this many columns, each row keeping its zero count per block; 0 holds the mask fixed
   */
  adaptiveMask?: number;
  /**
   * most bytes one layer's refit may hold (refitBytes: Gram matrices, patches, the widest solve); a
   * wider layer is left as pruning left it, with the reason in `skipped`. VGG-16's fc6 (25088 inputs)
   * would need 20 GB of Gram matrices.
   */
  maxRefitBytes: number;
}

export const DEFAULT_RECONSTRUCT: ReconstructOptions = { damp: 0.01, crossValidate: true, reluAware: true, maxPatches: 8192, maxBlock: 1024, threads: 0, maxRefitBytes: 1024 * 2 ** 20 };

export interface LayerRefit {
  node: string;
  weight: string;
  /** relative output error ||Y_dense - Y|| / ||Y_dense|| on the sampled patches, before and after */
  error_before: number;
  error_after: number;
  /** the ridge damp used (the largest over groups and column blocks when they differ) */
  damp: number;
}

export interface ReconstructResult {
  model: ModelProto;
  layers: LayerRefit[];
  /** layers left as they were, and why */
  skipped: { weight: string; reason: LayerSkip }[];
  /** layers whose input was captured on fewer calibration samples to fit the work allowance */
  subsampled: { weight: string; samples: number }[];
  /** the safety stop fired before every layer was refit */
  cutShort: boolean;
}

/**
 * Gradient-free layer-wise reconstruction of a pruned model: for each pruned linear layer in graph
 * order, capture its input on the calibration set from the model as refit so far (so earlier refits
 * feed later ones and errors do not compound), and solve for the surviving weights (and bias) that
 * best reproduce the dense layer's output, with the sparsity mask (the saved zeros) held fixed.
 *
 * The pruned layer may have fewer input columns than the dense one (structured pruning of its
 * producer): the cross term X_dense X_pruned^T handles that. It may also have fewer output rows
 * (its own channels pruned): with `opts.kept` each pruned row is fit to the dense row it was cut
 * from, so the pruned tensor at the layer output approaches the dense tensor at the kept channels,
 * and everything downstream that was sliced with it (BatchNorm, residual Add, Concat) stays consistent.
 *
 * Bounded for big models: each layer's input is captured by running only the graph before it, batch
 * by batch (only the sampled patches are kept); a layer is skipped, with the reason in `skipped`, when
 * its refit would hold more than `maxRefitBytes` or when its estimated capture + solve work (MACs, from
 * the model's shapes, never from timings) exceeds what is left of `work`, so the same layers are refit
 * on the same samples on any machine; the safety stop only cuts an overlong run short.
 */
export async function reconstruct(dense: ModelProto, pruned: ModelProto, weights: readonly string[], calib: Dataset, opts: ReconstructOptions = DEFAULT_RECONSTRUCT): Promise<ReconstructResult> {
  const ed = ModelEditor.copyOf(pruned);
  const model = ed.model;
  const pIndex = new GraphIndex(model.graph!);
  const dIndex = new GraphIndex(dense.graph!);
  const wanted = new Set(weights);
  const plans: { p: LinearLayer; d: LinearLayer; node: NodeProto; rows: Int32Array }[] = [];
  const skipped: { weight: string; reason: LayerSkip }[] = [];
  for (const node of pIndex.order) {
    const w = node.input.find((i) => wanted.has(i));
    if (!w) continue;
    wanted.delete(w);
    const p = linearLayer(pIndex, w);
    const d = linearLayer(dIndex, w);
    if (typeof p === 'string' || typeof d === 'string') {
      skipped.push({ weight: w, reason: { kind: 'unpaired', why: typeof p === 'string' ? p : `dense model: ${d as string}` } });
      continue;
    }
    if (p.input !== d.input) {
      skipped.push({ weight: w, reason: { kind: 'unpaired', why: 'reads a different tensor than the dense layer' } });
      continue;
    }
    const rows = denseRowsOf(p, d, opts.kept);
    if (typeof rows === 'string') {
      skipped.push({ weight: w, reason: { kind: 'unpaired', why: rows } });
      continue;
    }
    plans.push({ p, d, node, rows });
  }
  for (const w of wanted) skipped.push({ weight: w, reason: { kind: 'unpaired', why: 'not found in the pruned model' } });

  // the work bound: capture cost from multiply-accumulates, solve cost from its flop count at a fixed price
  const dMacs = nodeMacsOf(dense);
  const pMacs = nodeMacsOf(model);
  let cutShort = false;
  const batch = Math.min(boundedBatch(dense, CAPTURE_BATCH), boundedBatch(pruned, CAPTURE_BATCH));
  const layers: LayerRefit[] = [];
  const subsampled: { weight: string; samples: number }[] = [];
  for (const { p, d, node, rows } of plans) {
    const withBias = p.biasRefit && d.biasRefit;
    const cp = p.cols + (withBias ? 1 : 0);
    const cd = d.cols + (withBias ? 1 : 0);
    const blocks = columnBlocks(cp, cd === cp, opts.maxBlock);
    const bytes = refitBytes(opts.maxPatches, cp, cd, Math.max(...blocks)) + 4 * opts.maxPatches * (cp + cd) * (p.groups - 1);
    if (bytes > opts.maxRefitBytes) {
      skipped.push({ weight: p.weight, reason: { kind: 'memory', bytes, prunedColumns: cp, denseColumns: cd, limitBytes: opts.maxRefitBytes } });
      continue;
    }
    // checked after memory, so a layer that could never be refit says so whatever the stop
    if (cutShort || opts.stop?.passed()) {
      cutShort = true;
      skipped.push({ weight: p.weight, reason: { kind: 'time' } });
      continue;
    }
    const captureMacs = macsBefore(dense, d.input, dMacs) + macsBefore(model, p.input, pMacs);
    const solveWork = layerSolveWork(p.rows, cp, cd, blocks, p.groups);
    const captureWork = captureMacs * calib.count;
    const left = opts.work?.left ?? Infinity;
    // a big model's captures on every sample may not fit the work left while a subset does: the refit
    // samples at most maxPatches patches anyway, and a conv or token layer has many per sample
    const positions = (pMacs.get(node) ?? 0) / Math.max(1, p.rows * p.groups * p.cols);
    const samples = captureSamplesThatFit({ count: calib.count, positionsPerSample: positions, maxPatches: opts.maxPatches, spread: SUBSET_SPREAD, captureWork, solveWork, workLeft: left });
    if (samples === null) {
      skipped.push({ weight: p.weight, reason: { kind: 'work', estimate: { macs: captureWork + solveWork, samples: calib.count, leftMacs: left } } });
      continue;
    }
    opts.work?.charge(captureMacs * samples + solveWork);
    const input = samples < calib.count ? evenlySpaced(calib, samples) : calib;
    if (samples < calib.count) subsampled.push({ weight: p.weight, samples });
    const dc = await captureLayerInput(dense, d, input, withBias, opts, batch);
    const pc = await captureLayerInput(model, p, input, withBias, opts, batch);
    if (dc.hash === pc.hash && dc.count === pc.count && keptExactly(pIndex, dIndex, p, d, rows)) {
      // same input, weights sliced but not changed (a structured layer ahead of every cut): already exact
      layers.push({ node: p.node, weight: p.weight, error_before: 0, error_after: 0, damp: 0 });
      continue;
    }
    layers.push(await refitLayer(ed, pIndex, dIndex, node, p, d, rows, dc.patches, pc.patches, opts));
  }
  return { model, layers, skipped, subsampled, cutShort };
}

/** A layer refit's solve in work units: its floating-point operations at the fixed price per flop. */
function layerSolveWork(rows: number, cp: number, cd: number, blocks: readonly number[], groups: number): number {
  return refitFlops(rows, cp, cd, blocks, cd === cp ? 2 : 1, CROSS_VALIDATE_MAX_COLS, groups) * SOLVE_MACS_PER_FLOP;
}

/**
 * The work of solving every one of `weights` once (as aligned layers, bias column included), from the
 * model's shapes alone: what the recovery allowance adds so a model with few MACs but wide layers can
 * refit them (a solve's work depends on the layer's width, not on the calibration set).
 */
export function solveWorkOf(model: ModelProto, weights: readonly string[], maxBlock = DEFAULT_RECONSTRUCT.maxBlock): number {
  const index = new GraphIndex(model.graph!);
  let total = 0;
  for (const w of weights) {
    const p = linearLayer(index, w);
    if (typeof p === 'string') continue;
    const cp = p.cols + (p.biasRefit ? 1 : 0);
    total += layerSolveWork(p.rows, cp, cp, columnBlocks(cp, true, maxBlock), p.groups);
  }
  return total;
}

/** a subset capture keeps at least this many times maxPatches patches to sample from */
const SUBSET_SPREAD = 4;

/** `n` samples spread evenly over the set, so a calibration set ordered by class keeps every class. */
function evenlySpaced(calib: Dataset, n: number): Dataset {
  return takeSamples(calib, Int32Array.from({ length: n }, (_, k) => Math.floor((k * calib.count) / n)));
}

/** samples per onnxruntime run while capturing, before the activation bound cuts it */
const CAPTURE_BATCH = 128;

/**
 * A layer's input on the calibration set, reduced as it streams by: the sampled patches the refit
 * needs, and a hash of every value (whether dense and pruned inputs are identical). Runs only the
 * part of the model before the layer, in a lean session released at once.
 */
async function captureLayerInput(model: ModelProto, layer: LinearLayer, calib: Dataset, withBias: boolean, opts: ReconstructOptions, batch: number): Promise<{ patches: Patches; hash: string; count: number }> {
  const session = await sessionFromModel(graphUpTo(model, [layer.input]), opts.threads, { lean: true });
  let sampler: PatchSampler | undefined;
  const hash = new ValueHash();
  let count = 0;
  try {
    await streamActivations([{ session, fetch: [layer.input] }], calib, batch, ([acts], first, samples) => {
      const a = acts.get(layer.input)!;
      sampler ??= new PatchSampler(layer, a.dims.slice(1), calib.count, withBias, opts.maxPatches);
      sampler.add(a.data, first, samples);
      hash.add(a.data);
      count += a.data.length;
    });
  } finally {
    await session.release();
  }
  return { patches: sampler!.result(), hash: hash.digest(), count };
}

/** Two independent 32-bit FNV-1a style hashes over the float bits: equal activations hash equal. */
class ValueHash {
  private a = 0x811c9dc5;
  private b = 0x01000193;
  add(data: Float32Array): void {
    const u = new Uint32Array(data.buffer, data.byteOffset, data.length);
    let { a, b } = this;
    for (let i = 0; i < u.length; i++) {
      a = Math.imul(a ^ u[i], 16777619);
      b = Math.imul(b + u[i], 2246822519) ^ (b >>> 13);
    }
    this.a = a;
    this.b = b;
  }
  digest(): string {
    return `${(this.a >>> 0).toString(16)}:${(this.b >>> 0).toString(16)}`;
  }
}


function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether the pruned layer's weights and bias are the dense ones at its kept rows, unchanged. */
function keptExactly(pIndex: GraphIndex, dIndex: GraphIndex, p: LinearLayer, d: LinearLayer, rowMap: Int32Array): boolean {
  if (p.cols !== d.cols) return false;
  const pv = tensorToFloat32(pIndex.initializers.get(p.weight)!);
  const dv = tensorToFloat32(dIndex.initializers.get(d.weight)!);
  const pb = biasValues(pIndex, p);
  const db = biasValues(dIndex, d);
  if ((pb === null) !== (db === null)) return false;
  // no bias, or one computed in the graph: the same only when both layers read the same tensor
  if (pb === null && p.bias !== d.bias) return false;
  for (let g = 0; g < p.groups; g++) {
    const dg = Math.floor(rowMap[g * p.rows] / d.rows);
    const target = denseTarget(weightRows(d, dv, dg), db ?? new Float32Array(d.rows * d.groups), d, rowMap.subarray(g * p.rows, (g + 1) * p.rows), false);
    if (!sameValues(Float32Array.from(target), Float32Array.from(weightRows(p, pv, g)))) return false;
  }
  if (pb && db) for (let i = 0; i < rowMap.length; i++) if (pb[i] !== db[rowMap[i]]) return false;
  return true;
}

/**
 * A layer's bias values when the bias is an initializer, else null: no bias, or one computed in the graph
 * (an Identity of a shared initializer, as torch exports equal biases), which the refit leaves alone.
 */
function biasValues(index: GraphIndex, layer: LinearLayer): Float32Array | null {
  const t = layer.bias ? index.initializers.get(layer.bias) : undefined;
  return t ? tensorToFloat32(t) : null;
}

/**
 * For every output row of the pruned layer (group-major, as Conv stores them), the dense row it
 * was cut from; or why the two layers cannot be paired row by row.
 */
export function denseRowsOf(p: LinearLayer, d: LinearLayer, kept: KeptChannels | undefined): Int32Array | string {
  const total = p.rows * p.groups;
  if (total === d.rows * d.groups && p.groups === d.groups) return Int32Array.from({ length: total }, (_, i) => i);
  // Conv and Gemm (transB=1) store outputs on axis 0; Gemm (transB=0) and MatMul on axis 1
  const map = kept?.get(p.weight)?.get(p.transposed ? 1 : 0);
  if (!map) return 'output channels differ from the dense layer and the pruner did not record which were kept';
  if (map.length !== total) return `kept-channel map has ${map.length} entries for ${total} output channels`;
  for (let g = 0; g < p.groups; g++) {
    const dg = Math.floor(map[g * p.rows] / d.rows);
    for (let r = 0; r < p.rows; r++) {
      const k = map[g * p.rows + r];
      if (k < 0 || k >= d.rows * d.groups || Math.floor(k / d.rows) !== dg) return 'a pruned Conv group mixes channels of several dense groups';
    }
  }
  return map;
}

type Patches = ReturnType<PatchSampler['result']>;

async function refitLayer(ed: ModelEditor, pIndex: GraphIndex, dIndex: GraphIndex, node: NodeProto, p: LinearLayer, d: LinearLayer, rowMap: Int32Array, dPatches: Patches, pPatches: Patches, opts: ReconstructOptions): Promise<LayerRefit> {
  const withBias = p.biasRefit && d.biasRefit;
  const pw = pIndex.initializers.get(p.weight)!;
  const dValues = tensorToFloat32(dIndex.initializers.get(d.weight)!);
  const pValues = tensorToFloat32(pw);
  const dBias = biasValues(dIndex, d) ?? new Float32Array(d.rows * d.groups);
  const pBias = biasValues(pIndex, p) ?? new Float32Array(p.rows * p.groups);
  const n = pPatches.patches;
  let before = 0;
  let after = 0;
  let norm = 0;
  const damps: number[] = [];
  for (let g = 0; g < p.groups; g++) {
    // the dense group this pruned group was cut from, and the dense rows of its kept outputs
    const dg = Math.floor(rowMap[g * p.rows] / d.rows);
    const wd = denseTarget(weightRows(d, dValues, dg), dBias, d, rowMap.subarray(g * p.rows, (g + 1) * p.rows), withBias);
    const wp = augment(weightRows(p, pValues, g), pBias, p, g, withBias);
    const cd = dPatches.cols;
    const cp = pPatches.cols;
    const keep = new Uint8Array(p.rows * cp);
    for (let i = 0; i < keep.length; i++) keep[i] = wp[i] !== 0 || (withBias && i % cp === cp - 1) ? 1 : 0;
    const hFull = await crossGram(pPatches.perGroup[g], pPatches.perGroup[g], n, cp, cp);
    const cFull = await crossGram(dPatches.perGroup[dg], pPatches.perGroup[g], n, cd, cp);
    // the first half of the patches (the first half of the calibration samples: positions ascend by
    // sample) against the second, to choose the ridge strength by cross-validation
    const half = Math.floor(n / 2);
    // the fold's Grams only for a layer with a block narrow enough to be cross-validated from them
    const gramFolds = opts.crossValidate && half > 0 && columnBlocks(cp, cd === cp, opts.maxBlock).some((m) => m <= CROSS_VALIDATE_MAX_COLS);
    const foldA = gramFolds
      ? {
          hA: await crossGram(pPatches.perGroup[g].subarray(0, half * cp), pPatches.perGroup[g].subarray(0, half * cp), half, cp, cp),
          cA: await crossGram(dPatches.perGroup[dg].subarray(0, half * cd), pPatches.perGroup[g].subarray(0, half * cp), half, cd, cp),
        }
      : undefined;
    // a layer of a structured prune too wide for the Gram folds, fit on few patches, is cross-validated
    // from the patches (one damp for all its column blocks); a masked (unstructured) one keeps the fixed
    // damp: the folds judge the unmasked solution, and on the MLP at 80% in rounds the damp they chose
    // shipped 0.25 pt less
    const dual =
      opts.crossValidate && half > 0 && opts.kept !== undefined && cp > CROSS_VALIDATE_MAX_COLS && n <= DUAL_MAX_PATCHES
        ? { k: await timesTransposed(pPatches.perGroup[g], n, pPatches.perGroup[g], n, cp), t: await timesTransposed(dPatches.perGroup[dg], n, Float32Array.from(wd), p.rows, cd), n, half }
        : undefined;
    const { candidates, damp } = solveBlocks(wd, wp, keep, withBias, hFull, cFull, p.rows, cd, cp, opts, foldA, dual);
    damps.push(damp);
    // judged on a strided subset of patches, as layer outputs computed in onnxruntime
    const pe = strideRows(pPatches.perGroup[g], n, cp, ERROR_PATCHES);
    const de = strideRows(dPatches.perGroup[dg], n, cd, ERROR_PATCHES);
    const m = pe.length / cp;
    const yd = await timesTransposed(de, m, Float32Array.from(wd), p.rows, cd);
    // behind a ReLU, errors are judged (and, for structured layers, fit) after the gate
    const gate = opts.reluAware ? groupGate(reluGate(pIndex, node, p.rows * p.groups), g, p.rows) : null;
    const errors = (y: Float64Array) => (gate ? gatedRowErrors(yd, y, p.rows, gate) : rowErrors(yd, y, p.rows));
    if (gate && cp <= CROSS_VALIDATE_MAX_COLS && keep.every((k) => k === 1)) {
      const ydAll = await timesTransposed(dPatches.perGroup[dg], n, Float32Array.from(wd), p.rows, cd);
      const gated = await reluRefit(pPatches.perGroup[g], ydAll, n, candidates[0], hFull, p.rows, cp, damp, gate);
      if (gated) candidates.push(gated);
    }
    const e0 = errors(await timesTransposed(pe, m, Float32Array.from(wp), p.rows, cp));
    // the objective is a sum over output rows, so each row keeps whichever candidate (or the
    // pruned weights as they were) reproduces the dense output best: a refit never makes a row worse
    const refit = Float64Array.from(wp);
    const best = Float64Array.from(e0.error);
    for (const cand of candidates) {
      const e = errors(await timesTransposed(pe, m, Float32Array.from(cand), p.rows, cp));
      for (let r = 0; r < p.rows; r++) {
        if (e.error[r] < best[r]) {
          best[r] = e.error[r];
          refit.set(cand.subarray(r * cp, (r + 1) * cp), r * cp);
        }
      }
    }
    before += e0.error.reduce((a, b) => a + b, 0);
    after += best.reduce((a, b) => a + b, 0);
    norm += e0.norm;
    setWeightRows(p, pValues, g, strip(refit, p.rows, cp, withBias));
    if (withBias) for (let r = 0; r < p.rows; r++) pBias[g * p.rows + r] = refit[r * cp + cp - 1];
  }
  ed.replaceInitializer(pw.name, pValues);
  if (withBias) {
    if (p.bias) ed.replaceInitializer(p.bias, pBias);
    else addBias(ed, node, p, pBias);
  }
  const rel = (e: number) => (norm > 0 ? Math.sqrt(Math.max(0, e) / norm) : 0);
  return { node: p.node, weight: p.weight, error_before: rel(before), error_after: rel(after), damp: Math.max(...damps) };
}

const ERROR_PATCHES = 1024;

function strideRows(m: Float32Array, n: number, cols: number, most: number): Float32Array {
  if (n <= most) return m;
  const step = n / most;
  const out = new Float32Array(most * cols);
  for (let i = 0; i < most; i++) {
    const r = Math.floor(i * step);
    out.set(m.subarray(r * cols, (r + 1) * cols), i * cols);
  }
  return out;
}

/**
 * The dense weights of the kept rows (`denseRows`: global dense row indices, all in one group),
 * [kept x cols], plus the bias as the last column when refitting it.
 */
function denseTarget(w: Float64Array, bias: Float32Array, layer: LinearLayer, denseRows: Int32Array, withBias: boolean): Float64Array {
  const { rows, cols } = layer;
  const width = cols + (withBias ? 1 : 0);
  const out = new Float64Array(denseRows.length * width);
  denseRows.forEach((k, r) => {
    const local = k % rows;
    out.set(w.subarray(local * cols, (local + 1) * cols), r * width);
    if (withBias) out[r * width + cols] = bias[k];
  });
  return out;
}

/** [rows x cols] plus the bias as the last column when refitting it. */
function augment(w: Float64Array, bias: Float32Array, layer: LinearLayer, g: number, withBias: boolean): Float64Array {
  if (!withBias) return w;
  const { rows, cols } = layer;
  const out = new Float64Array(rows * (cols + 1));
  for (let r = 0; r < rows; r++) {
    out.set(w.subarray(r * cols, (r + 1) * cols), r * (cols + 1));
    out[r * (cols + 1) + cols] = bias[g * rows + r];
  }
  return out;
}

function strip(w: Float64Array, rows: number, cols: number, withBias: boolean): Float64Array {
  if (!withBias) return w;
  const out = new Float64Array(rows * (cols - 1));
  for (let r = 0; r < rows; r++) out.set(w.subarray(r * cols, r * cols + cols - 1), r * (cols - 1));
  return out;
}

/**
 * Two refits, each ending with the fixed-mask OBS sweep under H = Xp Xp^T:
 * - from W* = Wd C H^-1, the unmasked least-squares fit to the DENSE layer output (its own dense
 *   inputs): ||Wd Xd - W Xp||^2 = ||(W* - W) Xp||^2 + const, so this also corrects error carried in
 *   from earlier layers;
 * - from Wd itself (SparseGPT's objective: the dense weights on the pruned model's inputs), the
 *   better start when the inputs barely changed.
 * Layers wider than maxBlock are split into independent column blocks, which drops the coupling
 * between blocks but keeps the cubic cost bounded.
 */
function solveBlocks(wd: Float64Array, wp: Float64Array, keep: Uint8Array, withBias: boolean, h: Float64Array, c: Float64Array, rows: number, cd: number, cp: number, opts: ReconstructOptions, foldA?: { hA: Float64Array; cA: Float64Array }, dual?: { k: Float64Array; t: Float64Array; n: number; half: number }): { candidates: Float64Array[]; damp: number } {
  let used = 0;
  // a structured layer's columns do not line up with the dense ones: only the least-squares start applies
  const aligned = cd === cp;
  const outs = aligned ? [new Float64Array(rows * cp), new Float64Array(rows * cp)] : [new Float64Array(rows * cp)];
  const blocks = Math.ceil(cp / opts.maxBlock);
  const size = Math.ceil(cp / blocks);
  for (let b0 = 0; b0 < cp; b0 += aligned ? size : cp) {
    const b1 = aligned ? Math.min(cp, b0 + size) : cp;
    const m = b1 - b0;
    const hb = sub(h, cp, b0, b1, b0, b1);
    // dense rows taken from the same block when aligned: the block's own contribution is the target
    const [d0, d1] = aligned && blocks > 1 ? [b0, b1] : [0, cd];
    const cb = sub(c, cp, d0, d1, b0, b1);
    const wdb = new Float64Array(rows * (d1 - d0));
    for (let r = 0; r < rows; r++) wdb.set(wd.subarray(r * cd + d0, r * cd + d1), r * (d1 - d0));
    let damp = opts.damp;
    if (foldA && m <= CROSS_VALIDATE_MAX_COLS) {
      const hA = sub(foldA.hA, cp, b0, b1, b0, b1);
      const gA = matmul(wdb, sub(foldA.cA, cp, d0, d1, b0, b1), rows, d1 - d0, m);
      const hB = hb.map((v, i) => v - hA[i]);
      const gB = matmul(wdb, cb, rows, d1 - d0, m).map((v, i) => v - gA[i]);
      damp = crossValidatedDamp([{ h: hA, g: gA }, { h: hB, g: gB }], rows, m).damp;
    } else if (dual) {
      damp = crossValidatedDampDual(dual.k, dual.t, dual.n, rows, m, dual.half).damp;
    }
    used = Math.max(used, damp);
    const { inv, upper } = inverseHessian(hb, m, damp);
    const kb = new Uint8Array(rows * m);
    for (let r = 0; r < rows; r++) kb.set(keep.subarray(r * cp + b0, r * cp + b1), r * m);
    const starts = [matmul(matmul(wdb, cb, rows, d1 - d0, m), inv, rows, m, m)];
    if (aligned) {
      const own = new Float64Array(rows * m);
      for (let r = 0; r < rows; r++) own.set(wd.subarray(r * cd + b0, r * cd + b1), r * m);
      starts.push(own);
    }
    // structured layers' rows and columns are already cut: their mask has nothing to move
    const adaptive = aligned && (opts.adaptiveMask ?? 0) > 0;
    const fixed = new Uint8Array(m);
    for (let j = 0; j < m; j++) fixed[j] = hb[j * m + j] === 0 || (withBias && b0 + j === cp - 1) ? 1 : 0;
    starts.forEach((w, k) => {
      if (adaptive) adaptiveMaskSweep(w, Uint8Array.from(kb), fixed, upper, rows, m, opts.adaptiveMask!);
      else fixedMaskSweep(w, kb, upper, rows, m);
      // an input that is zero on every calibration patch (a border pixel) says nothing about its
      // weight: least squares would zero it, so it keeps the value pruning left it
      for (let j = 0; j < m; j++) {
        if (hb[j * m + j] !== 0) continue;
        for (let r = 0; r < rows; r++) w[r * m + j] = wp[r * cp + b0 + j];
      }
      for (let r = 0; r < rows; r++) outs[k].set(w.subarray(r * m, (r + 1) * m), r * cp + b0);
    });
  }
  return { candidates: outs, damp: used };
}

function groupGate(gate: ReluGate | null, g: number, rows: number): ReluGate | null {
  return gate && { a: gate.a.subarray(g * rows, (g + 1) * rows), c: gate.c.subarray(g * rows, (g + 1) * rows) };
}

/** Rows [r0, r1) x columns [c0, c1) of a row-major matrix with `stride` columns. */
function sub(a: Float64Array, stride: number, r0: number, r1: number, c0: number, c1: number): Float64Array {
  const out = new Float64Array((r1 - r0) * (c1 - c0));
  for (let r = r0; r < r1; r++) out.set(a.subarray(r * stride + c0, r * stride + c1), (r - r0) * (c1 - c0));
  return out;
}

/** Squared error per output row between dense outputs yd and outputs y, both [patches x rows]. */
function rowErrors(yd: Float64Array, y: Float64Array, rows: number): { error: Float64Array; norm: number } {
  const error = new Float64Array(rows);
  let norm = 0;
  for (let i = 0; i < yd.length; i++) {
    error[i % rows] += (yd[i] - y[i]) ** 2;
    norm += yd[i] ** 2;
  }
  return { error, norm };
}

/** Give a bias-less Conv/Gemm the refit bias as a new initializer input, in the weight's element type (the op needs them alike). */
function addBias(ed: ModelEditor, node: NodeProto, layer: LinearLayer, bias: Float32Array): void {
  const type = ed.initializer(layer.weight)!.dataType;
  ed.setInput(node, 2, ed.addFloatInitializer(`${layer.weight}.prune_guard_bias`, [bias.length], bias, type));
}
