import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Config } from '../config/schema.js';
import { sliceBatch, type Dataset } from '../data/dataset.js';
import type { Progress } from '../io/progress.js';
import { measureInterleaved } from '../measure/latency.js';
import { cachedTiming, timingKey } from '../measure/timingCache.js';
import { signTestInterval } from '../measure/stats/sequential.js';
import { loadModel, opsetVersion, saveModel, setMetadata } from '../onnx/model.js';
import { median } from 'simple-statistics';
import { kernelReport, optimisedGraph } from '../quantize/kernels.js';
import type { ActivationType, WeightBits } from '../quantize/params.js';
import { buildQuantized, calibQuality, layerErrors, predict, prepareQuantization, relativeL2, type Prepared } from '../quantize/prepare.js';
import type { ActivationChoice, FloatReason, QuantizeInfo, QuantizeVariant } from '../quantize/types.js';
import { VERSION } from '../version.js';
import { UserError } from '../errors.js';
import type { Head } from '../onnx/head.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { qdqSupport } from '../quantize/qdq.js';
import { dynamicCandidates, MIN_DYNAMIC_OPSET, quantizeDynamic } from '../quantize/dynamic.js';
import { measureStep, type MeasuredStep, type StepContext } from './measureStep.js';
import type { ShipForm } from './widthCheck.js';
import { QUALITY_THREADS } from '../onnx/runtime/quality.js';

/** Calibration samples the decisions (weight precision, float layers) are measured on. */
const DECISION_SAMPLES = 256;
/** A plan may lose this much calibration quality against the float model before layers fall back to float. */
export const CALIB_TOLERANCE = 0.005;
/** Error-driven fallback stops after this many layers: past it the model is mostly float anyway. */
const MAX_ERROR_FALLBACKS = 3;
/**
 * Timing of the plans: enough rounds to rank them, each sample the best of 3 back-to-back runs so a
 * preempted run on a shared runner does not decide; the shipped step is timed again with the others.
 */
const DECISION_TIMING = { warmup: 3, runs: 12, repeat: 3 };
/**
 * How much faster, round by round, a plan with more float layers (or int8 activations) must run than
 * the plan it would replace to be chosen.
 */
const CLEAR_GAIN = 1.03;
/** Input channels at or below which a first conv counts as narrow (a grey or RGB image). */
const NARROW_CHANNELS = 4;

export interface QuantizeStepInput {
  /** the float model to quantize: the dense input, or the last pruning/recovery artifact */
  source: string;
  calib: Dataset;
  config: Config;
  /** where the quantized model is saved */
  artifact: string;
  progress: Progress;
  provider: 'cpu' | 'cuda';
  /** the judged output (`--output`, a sigmoid head); absent: the model's only output, read as logits */
  head?: Head;
}

export interface QuantizeStepResult {
  artifact: string;
  description: string;
  info: QuantizeInfo;
  notes: string[];
}

function firstSlice(d: Dataset, n: number): Dataset {
  if (d.count <= n) return d;
  return { ...d, count: n, inputs: sliceBatch(d, 0, n), labels: d.labels ? d.labels.subarray(0, n) : null };
}

/** Calibration samples a model quantized only to be timed is calibrated on: the kernels onnxruntime picks do not depend on the ranges. */
const TIMING_CALIB_SAMPLES = 64;

/**
 * A pruned model as `quantize: int8` will ship it, for timing: every layer the exclude list allows in
 * integer kernels. Undefined when static INT8 cannot take the model (the quantize step says why).
 */
export function int8ShipForm(dense: ModelProto, calib: Dataset, config: Config): ShipForm | undefined {
  if (qdqSupport(dense).kind === 'unsupported') return undefined;
  const slice = firstSlice(calib, TIMING_CALIB_SAMPLES);
  return {
    name: 'int8',
    convert: async (pruned) => {
      const prep = await prepareQuantization(pruned, slice, { calibrator: 'minmax', exclude: config.quantizeExclude, threads: QUALITY_THREADS });
      return buildQuantized(prep, new Set(), 8).model;
    },
  };
}

/**
 * Weight precision by measurement: at 8 bits some CPUs' integer kernels (AVX2 without VNNI) saturate
 * 16-bit intermediate sums, which the QDQ graph evaluated in float (simulated) never does. Both
 * precisions are run fused and simulated; 8 bits is kept unless its fused result strays from its
 * simulation clearly more than 7 bits' does (rounding alone moves both alike).
 */
async function chooseWeightBits(prep: Prepared, slice: Dataset, threads: number, head: Head | undefined): Promise<{ bits: WeightBits; deviation: { bits8: number; bits7: number }; reason: string }> {
  const dev = async (bits: WeightBits): Promise<number> => {
    const q = buildQuantized(prep, new Set(), bits).model;
    const fused = await predict(q, slice, 'fused', threads, head);
    const simulated = await predict(q, slice, 'simulated', threads, head);
    return relativeL2(fused.logits!, simulated.logits!);
  };
  const bits8 = await dev(8);
  const bits7 = await dev(7);
  const overflow = bits8 > 2 * bits7 + 0.01;
  const fmt = (x: number) => x.toFixed(4);
  const reason = overflow
    ? `7-bit weights: at 8 bits onnxruntime's integer kernels strayed from the simulated QDQ graph (relative output error ${fmt(bits8)} against ${fmt(bits7)} at 7 bits), the sign of saturating 16-bit sums on this CPU`
    : `8-bit weights: this CPU's integer kernels match the simulated QDQ graph at 8 bits as closely as at 7 (relative output error ${fmt(bits8)} against ${fmt(bits7)})`;
  return { bits: overflow ? 7 : 8, deviation: { bits8, bits7 }, reason };
}

/** Plans to time: everything quantized, and with the layer kinds whose integer kernels often do not pay kept in float. */
function variants(prep: Prepared): { name: string; keep: Map<string, FloatReason> }[] {
  const compute = prep.nodes.filter((n) => n.kind === 'conv' || n.kind === 'depthwise-conv' || n.kind === 'gemm' || n.kind === 'matmul');
  const first = compute[0];
  const narrow = first && first.opType === 'Conv' && (first.inChannels ?? Infinity) <= NARROW_CHANNELS && !prep.excluded.includes(first.label) ? first.label : undefined;
  const depthwise = prep.nodes.filter((n) => n.kind === 'depthwise-conv' && !prep.excluded.includes(n.label)).map((n) => n.label);
  const out: { name: string; keep: Map<string, FloatReason> }[] = [{ name: 'all-int8', keep: new Map() }];
  if (narrow) out.push({ name: 'narrow-first-layer-float', keep: new Map([[narrow, 'narrow-first-layer']]) });
  if (depthwise.length) out.push({ name: 'depthwise-float', keep: new Map(depthwise.map((d) => [d, 'depthwise' as const])) });
  if (narrow && depthwise.length) out.push({ name: 'narrow-first-and-depthwise-float', keep: new Map([[narrow, 'narrow-first-layer' as const], ...depthwise.map((d) => [d, 'depthwise' as const] as const)]) });
  return out;
}

function detail(reason: FloatReason, v?: QuantizeVariant): string {
  switch (reason) {
    case 'excluded': return 'matched the quantize exclude list';
    case 'narrow-first-layer': return `few input channels; the plan keeping it float measured fastest (${v?.speedup?.toFixed(2)}x float)`;
    case 'depthwise': return `depthwise; the plan keeping depthwise convs float measured fastest (${v?.speedup?.toFixed(2)}x float)`;
    case 'error': return 'largest share of the quantization error while the calibration quality was below tolerance';
  }
}

/** Predictions on the decision samples a plan keeping more layers float may lose against the tolerance: noise. */
const NOISE_PREDICTIONS = 2;

/**
 * The plans whose calibration quality may ship, each with the plan it ships on the strength of: within
 * CALIB_TOLERANCE of float (itself), or within NOISE_PREDICTIONS more of it while keeping float every
 * layer a plan within it keeps. A layer kept float removes its quantization error, so such a plan is no
 * worse in expectation, and one or two predictions of a few hundred must not rule out a plan that only
 * times faster.
 */
export function eligiblePlans<P extends Pick<QuantizeVariant, 'calib_quality' | 'keep_float'>>(plans: readonly P[], floatQuality: number, samples: number): { plan: P; through: P }[] {
  const within = plans.filter((p) => p.calib_quality >= floatQuality - CALIB_TOLERANCE);
  const noise = NOISE_PREDICTIONS / Math.max(1, samples);
  return plans.flatMap((p) => {
    if (within.includes(p)) return [{ plan: p, through: p }];
    const through = p.calib_quality >= floatQuality - CALIB_TOLERANCE - noise ? within.find((w) => w.keep_float.every((n) => p.keep_float.includes(n))) : undefined;
    return through ? [{ plan: p, through }] : [];
  });
}

/** One plan as measured with one activation type: speedup over float and calibration quality. */
interface Timed {
  speedup: number;
  quality: number;
}

/** Two-sided level of the sign-test interval a per-round gain must clear to count as clearly faster. */
const CLEAR_ALPHA = 0.05;

/**
 * The activation type, from the all-INT8 plan built both ways. uint8 is the default (onnxruntime may
 * fuse int8 activations only partly on x86); int8 ships only when the sign-test interval of its per-round gain
 * (`gains`: log of uint8's time over int8's, one per interleaved round and batch size) lies wholly
 * above CLEAR_GAIN, it scored no more than noise below uint8 and not below `ships.floor`, and the plan
 * that ships is the all-INT8 one it was timed on. A clear gain decides alike on an
 * idle and a busy runner; a tie keeps the default, so the shipped file does not flip with the load.
 * The two grids hold the same values, so a difference in quality is the kernels' arithmetic.
 */
export function chooseActivations(
  uint8: Timed,
  int8: Timed,
  gains: readonly number[],
  samples: number,
  ships: { floor: number; allInt8: boolean } = { floor: -Infinity, allInt8: true },
): { type: ActivationType; record: ActivationChoice } {
  const noise = NOISE_PREDICTIONS / Math.max(1, samples);
  const { interval, clear: faster } = gainInterval(gains);
  const asGood = int8.quality >= uint8.quality - noise;
  const wins = faster && asGood;
  const type: ActivationType = wins && ships.allInt8 && int8.quality >= ships.floor ? 'int8' : 'uint8';
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${((Math.exp(x) - 1) * 100).toFixed(0)}%`;
  const vs =
    `the all-INT8 plan ran ${int8.speedup.toFixed(2)}x float with int8 activations and ${uint8.speedup.toFixed(2)}x with uint8` +
    (interval ? ` (median gain per round with int8 ${pct(interval[0])} to ${pct(interval[1])}, ${Math.round((1 - CLEAR_ALPHA) * 100)}% interval)` : '');
  const clear = `more than ${Math.round((CLEAR_GAIN - 1) * 100)}% faster`;
  const reason =
    type === 'int8'
      ? `int8 activations: ${vs}, ${clear} at the same calibration quality`
      : !faster
        ? `uint8 activations: ${vs}; int8 must be clearly ${clear}`
        : !asGood
          ? `uint8 activations: ${vs}, but int8 scored ${((uint8.quality - int8.quality) * 100).toFixed(2)} pt lower in calibration quality`
          : !ships.allInt8
            ? `uint8 activations: ${vs}, but the plan chosen keeps layers float, and int8 activations were timed on the all-INT8 plan only`
            : `uint8 activations: ${vs}, but with int8 the calibration quality is below the tolerance under float`;
  return { type, record: { uint8_speedup: uint8.speedup, int8_speedup: int8.speedup, uint8_calib_quality: uint8.quality, int8_calib_quality: int8.quality, reason } };
}

/** Times per model per batch size with the same number of rounds for every model at each batch size: what the decisions pair. */
function pairedTimes(v: unknown, models: number, batches: number): v is number[][][] {
  const rows = (x: unknown): x is number[][] => Array.isArray(x) && x.length === batches && x.every((r) => Array.isArray(r) && r.length > 0 && r.every((t) => typeof t === 'number' && t > 0));
  return Array.isArray(v) && v.length === models && v.every(rows) && v.every((m: number[][]) => m.every((r, b) => r.length === (v[0] as number[][])[b].length));
}

/** Per round, log(time of `slower` / time of `faster`): what running `faster` instead gained in that round. */
function pairedGains(slower: readonly number[], faster: readonly number[]): number[] {
  return faster.map((t, r) => Math.log(slower[r] / t));
}

/** The sign-test interval of the median per-round log gain, and whether it lies wholly above CLEAR_GAIN. */
function gainInterval(gains: readonly number[]): { interval: [number, number] | null; clear: boolean } {
  const interval = signTestInterval(gains, CLEAR_ALPHA);
  return { interval, clear: interval !== null && interval[0] > Math.log(CLEAR_GAIN) };
}

/** Whether `x` ran clearly faster than `y`, round by round. */
function clearlyFaster(x: { rounds: readonly number[] }, y: { rounds: readonly number[] }): boolean {
  return gainInterval(pairedGains(y.rounds, x.rounds)).clear;
}

/**
 * The plan that ships among those eligible, in plan order: one keeping as many layers float or more
 * replaces the plan so far only when it ran clearly faster round by round; one keeping fewer replaces
 * it unless the plan so far ran clearly faster. A difference within the timing noise keeps INT8,
 * so a rerun on a busy runner ships the same plan.
 */
export function pickPlan<P extends { keep_float: readonly string[]; rounds: readonly number[] }>(eligible: readonly P[]): P {
  return eligible.reduce((a, b) => (b.keep_float.length >= a.keep_float.length ? (clearlyFaster(b, a) ? b : a) : clearlyFaster(a, b) ? a : b));
}

/**
 * The `quantize:int8` step: calibrate, choose weight precision and float layers by measurement on this
 * runner, write the static QDQ model, and read back which kernels onnxruntime runs for it.
 */
export async function quantizeStep(input: QuantizeStepInput): Promise<QuantizeStepResult> {
  const { config, progress, calib } = input;
  // calibration and every quality decision at the fixed thread count; only the timing uses latency.threads
  const threads = QUALITY_THREADS;
  const float = loadModel(input.source).proto;
  progress.note(`quantizing ${path.basename(input.source)} to INT8 (static QDQ, ${config.quantizeCalibration} calibration on ${calib.count} samples)`);
  const prep = await prepareQuantization(float, calib, { calibrator: config.quantizeCalibration, exclude: config.quantizeExclude, threads });
  const slice = firstSlice(calib, DECISION_SAMPLES);
  const metric = slice.labels ? 'accuracy' : 'agreement';
  const floatPred = await predict(float, slice, 'fused', threads, input.head);
  const floatQuality = calibQuality(floatPred, floatPred, slice.labels);
  const weights = await chooseWeightBits(prep, slice, threads, input.head);

  // time every plan against the float model in one interleaved pass, on calibration inputs, and the
  // all-INT8 plan once more with int8 activations: which of the two runs faster is the CPU's to say
  const scratch = fs.mkdtempSync(path.join(path.dirname(input.artifact), '.quantize-'));
  const measured: (QuantizeVariant & { keep: Map<string, FloatReason>; rounds: number[] })[] = [];
  const signed = { speedup: NaN, quality: NaN, rounds: [] as number[] };
  let timingCached = false;
  try {
    const plans = variants(prep);
    const files: string[] = [];
    for (const [k, v] of plans.entries()) {
      const q = buildQuantized(prep, new Set(v.keep.keys()), weights.bits);
      const file = path.join(scratch, `variant-${k}.onnx`);
      saveModel(q.model, file);
      files.push(file);
      const quality = calibQuality(await predict(q.model, slice, 'fused', threads, input.head), floatPred, slice.labels);
      measured.push({ name: v.name, keep_float: [...v.keep.keys()], calib_quality: quality, speedup: null, chosen: false, keep: v.keep, rounds: [] });
    }
    const signedModel = buildQuantized(prep, new Set(), weights.bits, 'int8').model;
    const signedFile = path.join(scratch, 'variant-int8-activations.onnx');
    saveModel(signedModel, signedFile);
    signed.quality = calibQuality(await predict(signedModel, slice, 'fused', threads, input.head), floatPred, slice.labels);
    const timed = [input.source, ...files, signedFile];
    const timingInput = sliceBatch(calib, 0, Math.min(calib.count, Math.max(...config.batchSizes)));
    // kept per machine and file contents: a rerun of the same inputs here decides from the same rounds
    const key = timingKey('int8-plans', timed, { provider: input.provider, threads: config.latency.threads, batches: config.batchSizes, timing: DECISION_TIMING, input: [...timingInput.values()].map((a) => a.dims) });
    const { value: timings, cached } = await cachedTiming(key, (v): v is number[][][] => pairedTimes(v, timed.length, config.batchSizes.length), async () => {
      progress.stage({ kind: 'latency', detail: `float, ${plans.length} INT8 plan${plans.length === 1 ? '' : 's'} and int8 activations interleaved`, total: config.batchSizes.length * (DECISION_TIMING.warmup + DECISION_TIMING.runs) });
      const measuredTimes = await measureInterleaved(timed, timingInput, { batchSizes: config.batchSizes, ...DECISION_TIMING, threads: config.latency.threads, provider: input.provider }, (d) => progress.update(d));
      progress.stop();
      return measuredTimes;
    });
    timingCached = cached;
    const speedupOf = (k: number): number => {
      const logs = config.batchSizes.map((_, b) => Math.log(median(timings[0][b]) / median(timings[k][b])));
      return Math.exp(logs.reduce((a, x) => a + x, 0) / logs.length);
    };
    // each plan's times, round by round over the batch sizes: rounds are interleaved, so the k-th
    // time of one plan ran beside the k-th of every other
    measured.forEach((m, k) => {
      m.speedup = speedupOf(k + 1);
      m.rounds = timings[k + 1].flat();
    });
    signed.speedup = speedupOf(timed.length - 1);
    signed.rounds = timings[timed.length - 1].flat();
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  const passing = eligiblePlans(measured, floatQuality, slice.count);
  const eligible = passing.map((e) => e.plan);
  const pick = eligible.length ? pickPlan(eligible) : measured.reduce((a, b) => (b.calib_quality > a.calib_quality ? b : a));
  pick.chosen = true;
  const keep = new Map(pick.keep);

  // per round, uint8's all-INT8 time over int8's: rounds are interleaved, so each pair ran side by side
  const activations = chooseActivations({ speedup: measured[0].speedup!, quality: measured[0].calib_quality }, signed, pairedGains(measured[0].rounds, signed.rounds), slice.count, {
    floor: floatQuality - CALIB_TOLERANCE,
    allInt8: pick === measured[0],
  });
  const { type } = activations;
  let q = buildQuantized(prep, new Set(keep.keys()), weights.bits, type);
  // the plans were scored with uint8 activations; int8 ships only on the all-INT8 plan, scored with them
  let quality = type === 'uint8' ? pick.calib_quality : signed.quality;
  // layers whose error the calibration set cannot afford go back to float, worst contribution first
  let meets = eligible.includes(pick);
  let errors = await layerErrors(prep.folded, q, slice, threads);
  for (let k = 0; k < MAX_ERROR_FALLBACKS && !meets; k++) {
    const worst = errors.filter((e) => !keep.has(e.node)).sort((a, b) => b.output_error - b.input_error - (a.output_error - a.input_error))[0];
    if (!worst) break;
    keep.set(worst.node, 'error');
    q = buildQuantized(prep, new Set(keep.keys()), weights.bits, type);
    quality = calibQuality(await predict(q.model, slice, 'fused', threads, input.head), floatPred, slice.labels);
    meets = quality >= floatQuality - CALIB_TOLERANCE;
    errors = await layerErrors(prep.folded, q, slice, threads);
  }
  setMetadata(q.model, { 'prune-guard.version': VERSION, 'prune-guard.quantize': 'int8-static-qdq', 'prune-guard.quantize.weight_bits': String(weights.bits), 'prune-guard.quantize.activations': type });
  saveModel(q.model, input.artifact);
  const kernels = kernelReport(q.model, await optimisedGraph(input.artifact, 1));

  const floatLayers = [
    ...prep.excluded.map((node) => ({ node, reason: 'excluded' as const, detail: detail('excluded') })),
    ...[...keep].map(([node, reason]) => ({ node, reason, detail: detail(reason, pick) })),
  ];
  const notes: string[] = [];
  if (prep.granularityNote) notes.push(`quantize: ${prep.granularityNote}`);
  const backToFloat = [...keep.values()].filter((r) => r === 'error').length;
  const through = passing.find((e) => e.plan === pick && e.through !== pick)?.through;
  if (meets && through) {
    notes.push(
      `quantize: ${pick.name} ships at calibration ${metric} ${(pick.calib_quality * 100).toFixed(2)}% (${((floatQuality - pick.calib_quality) * 100).toFixed(2)} pt below float, past the ${(CALIB_TOLERANCE * 100).toFixed(1)} pt tolerance by at most ${NOISE_PREDICTIONS} of ${slice.count} predictions): ` +
        `it keeps float every layer ${through.name} (${(through.calib_quality * 100).toFixed(2)}%) keeps, so it is no less accurate in expectation`,
    );
  }
  if (!meets) notes.push(`quantize: calibration ${metric} ${(quality * 100).toFixed(2)}% is still more than ${(CALIB_TOLERANCE * 100).toFixed(1)} pt below float (${(floatQuality * 100).toFixed(2)}%) after ${backToFloat} layer${backToFloat === 1 ? '' : 's'} went back to float`);
  if (pick.speedup !== null && pick.speedup < 1) notes.push(`quantize: every INT8 plan measured slower than float on this runner (best ${pick.speedup.toFixed(2)}x); the budgets judge the shipped model as measured`);
  // layers meant to run integer kernels that onnxruntime did not fuse
  const unfused = kernels.layers.filter((l) => !l.integer && !keep.has(l.node) && !prep.excluded.includes(l.node));
  if (unfused.length > 0) notes.push(`quantize: onnxruntime left ${unfused.map((l) => `${l.node} (${l.kernel})`).join(', ')} in float`);
  const integerLayers = kernels.layers.filter((l) => l.integer).length;
  const info: QuantizeInfo = {
    scheme: 'static-qdq',
    activations: type,
    activation_choice: activations.record,
    timing_cached: timingCached,
    weights: { type: 'int8', bits: weights.bits, granularity: q.perChannel ? 'per-channel' : 'per-tensor', fused_deviation: weights.deviation, reason: weights.reason },
    calibration: { method: prep.calibrator, samples: prep.calibSamples, decision_samples: slice.count },
    folded_batch_norms: prep.foldedBatchNorms,
    quantized_nodes: q.quantized.length,
    absorbed_relus: q.absorbed.length,
    float_layers: floatLayers,
    variants: measured.map(({ keep: _keep, rounds: _rounds, ...v }) => v),
    calib_quality: { metric, float: floatQuality, quantized: quality },
    layer_errors: [...errors].sort((a, b) => b.output_error - b.input_error - (a.output_error - a.input_error)).slice(0, 20),
    kernels,
  };
  const description = `INT8 static QDQ (${config.quantizeCalibration} calibration, ${prep.calibSamples} samples): ${type} activations, ${weights.bits}-bit ${info.weights.granularity} int8 weights; ${integerLayers} of ${kernels.layers.length} layers run integer kernels${floatLayers.length ? `, ${floatLayers.length} kept float` : ''}`;
  return { artifact: input.artifact, description, info, notes };
}

/** Whether the CPU's integer dot products add 8-bit products without 16-bit saturation (VNNI, AMX), from Linux's CPU flags. */
function cpuHasVnni(): boolean | undefined {
  try {
    return /\b(avx512_vnni|avx_vnni|amx_int8|asimddp)\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * The `quantize:dynamic` step: MatMul weights to int8, activations quantized per batch at run time.
 * Weight precision is measured on the calibration set when there is one (error against float at 8 and
 * 7 bits: in exact arithmetic 8 bits has about half 7 bits' error, so more means saturation), else read
 * from the CPU's features.
 */
export async function quantizeDynamicStep(input: Omit<QuantizeStepInput, 'calib'> & { calib?: Dataset }): Promise<QuantizeStepResult> {
  const { config, progress } = input;
  const threads = QUALITY_THREADS;
  const float = loadModel(input.source).proto;
  progress.note(`quantizing ${path.basename(input.source)} to INT8 (dynamic: MatMul weights int8, activations quantized per batch)`);
  let bits: WeightBits = 8;
  let deviation: { bits8: number; bits7: number } | null = null;
  let reason: string;
  if (input.calib) {
    const slice = firstSlice(input.calib, DECISION_SAMPLES);
    const reference = await predict(float, slice, 'fused', threads, input.head);
    const err = async (b: WeightBits) => relativeL2((await predict(quantizeDynamic(float, { weightBits: b, exclude: config.quantizeExclude }).model, slice, 'fused', threads, input.head)).logits!, reference.logits!);
    deviation = { bits8: await err(8), bits7: await err(7) };
    bits = deviation.bits8 > deviation.bits7 ? 7 : 8;
    reason = `${bits}-bit weights: relative output error against float ${deviation.bits8.toFixed(4)} at 8 bits and ${deviation.bits7.toFixed(4)} at 7 bits on ${slice.count} calibration samples${bits === 7 ? ' (8 bits worse than 7: saturating 16-bit sums on this CPU)' : ''}`;
  } else {
    const vnni = cpuHasVnni();
    bits = vnni === false ? 7 : 8;
    reason = vnni === undefined ? '8-bit weights: no calibration data to measure on and no CPU flags to read' : `${bits}-bit weights: no calibration data to measure on; this CPU ${vnni ? 'has' : 'lacks'} VNNI-class integer dot products`;
  }
  const q = quantizeDynamic(float, { weightBits: bits, exclude: config.quantizeExclude });
  setMetadata(q.model, { 'prune-guard.version': VERSION, 'prune-guard.quantize': 'int8-dynamic', 'prune-guard.quantize.weight_bits': String(bits) });
  saveModel(q.model, input.artifact);
  const kernels = kernelReport(q.model, await optimisedGraph(input.artifact, 1));
  const notes: string[] = [];
  const info: QuantizeInfo = {
    scheme: 'dynamic',
    activations: 'uint8',
    activation_choice: null,
    weights: { type: 'int8', bits, granularity: 'per-channel', fused_deviation: deviation, reason },
    calibration: null,
    folded_batch_norms: 0,
    quantized_nodes: q.quantized.length,
    absorbed_relus: 0,
    float_layers: [],
    variants: [],
    calib_quality: null,
    layer_errors: [],
    kernels,
  };
  const description = `INT8 dynamic: ${q.quantized.length} MatMul weights int8 (${bits}-bit, per output column), activations quantized per batch; ${kernels.integer_nodes} integer kernels in onnxruntime's graph`;
  return { artifact: input.artifact, description, info, notes };
}

/**
 * Refuse, before anything is written, a quantization this model cannot take: an opset or element types
 * the rewrite cannot express, or (dynamic) no MatMul to rewrite. What the settings and inputs need
 * (calibration data, no gradual schedule) is checked with the other rules in src/config/rules.ts.
 */
export function checkQuantizeInputs(config: Config, model: ModelProto, req: { model: string }): void {
  if (config.quantize === 'dynamic') {
    if (opsetVersion(model) < MIN_DYNAMIC_OPSET) throw new UserError(`${req.model}: cannot quantize dynamically: opset ${opsetVersion(model)} has no MatMulInteger (it starts at opset ${MIN_DYNAMIC_OPSET}); re-export the model at opset 13 or later`);
    if (dynamicCandidates(model, config.quantizeExclude).length === 0) throw new UserError(`${req.model}: --quantize dynamic rewrites MatMul layers with a constant weight and this model has none; use --quantize int8 (static, calibrated on --calib)`);
  } else if (config.quantize === 'int8') {
    const support = qdqSupport(model);
    if (support.kind === 'unsupported') throw new UserError(`${req.model}: cannot quantize to INT8: ${support.reason}`);
  }
}

/** A quantized step is measured like any other, with what the quantizer decided attached. */
export async function measureQuantized(q: QuantizeStepResult, ctx: StepContext): Promise<MeasuredStep> {
  const m = await measureStep({ kind: 'quantize', scheme: q.info.scheme === 'dynamic' ? 'dynamic' : 'int8' }, q.description, q.artifact, ctx);
  m.step.quantize = q.info;
  return m;
}

/** The configured quantization of a float file, saved at `artifact`; undefined without `--quantize`. */
export async function quantizeLast(source: string, calib: Dataset | undefined, config: Config, artifact: string, progress: Progress, provider: 'cpu' | 'cuda', head: Head): Promise<QuantizeStepResult | undefined> {
  if (config.quantize === 'int8') return quantizeStep({ source, calib: calib!, config, artifact, progress, provider, head });
  if (config.quantize === 'dynamic') return quantizeDynamicStep({ source, calib, config, artifact, progress, provider, head });
  return undefined;
}
