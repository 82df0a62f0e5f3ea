import * as fs from 'node:fs';
import * as path from 'node:path';
import { median } from 'simple-statistics';
import type { Config } from '../config/schema.js';
import { sliceBatch, type Dataset } from '../data/dataset.js';
import { sha256File } from '../io/hash.js';
import { cacheDir, readCached, writeCached } from '../io/measureCache.js';
import type { Progress } from '../io/progress.js';
import { measureInterleaved } from '../measure/latency.js';
import { saveModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { onnxruntimeVersion } from '../onnx/runtime/ort.js';
import { pruneModel, type PruneContext, type PruneOutcome } from '../prune/pruneModel.js';
import { machineId, type MeasureOptions } from '../prune/structured/hardware.js';
import type { WidthCheck } from '../prune/structured/record.js';

/** The coarse prune ships only when it ran at least this much faster (geometric mean over batch sizes). */
export const COARSE_GAIN = 0.02;
/**
 * A candidate must remove at least this share of the channels the prune on measured widths removed: the
 * check trades widths, not the amount pruned (whole blocks can leave narrow groups uncut).
 */
export const MIN_REMOVED_SHARE = 0.9;
/** The widest multiple the check coarsens to. */
const MAX_MULTIPLE = 32;
/** Timed rounds of the check at most: fewer than a step's latency, enough for a ratio of medians. */
const CHECK_TIMING = { warmup: 3, runs: 15 };

/** p50 ms of each file at each batch size, timed interleaved. */
export type TimeModels = (files: readonly string[]) => Promise<number[][]>;

/**
 * The form a pruned model ships in, when that is not the float model itself: INT8 kernels run fast at
 * other channel counts than float ones (on an AVX-512 VNNI Xeon a 3x3 QLinearConv with 8 channels ran
 * slower than with 16), so a run that quantizes afterwards times its candidates quantized.
 */
export interface ShipForm {
  name: 'int8';
  convert: (pruned: ModelProto) => Promise<ModelProto>;
}

/**
 * The multiples the check may try, in order: the largest any group's probes asked for, given to every
 * group (unless every group already has it), then its doublings up to MAX_MULTIPLE.
 */
export function coarseMultiples(multiples: readonly number[]): number[] {
  if (multiples.length === 0) return [];
  const max = Math.max(...multiples);
  const out = multiples.every((m) => m === max) ? [] : [max];
  for (let m = 2 * max; m <= MAX_MULTIPLE; m *= 2) out.push(m);
  return out;
}

/** A width rule the check times: every group on `multiple`, with or without halvings below it (allowedWidths). */
export interface WidthCandidate {
  multiple: number;
  wholeBlocks: boolean;
}

/**
 * The rules the check may try, in order: each coarse multiple (coarseMultiples) with halvings, and the
 * largest multiple any group asked for and its doublings in whole blocks only.
 */
export function widthCandidates(multiples: readonly number[]): WidthCandidate[] {
  if (multiples.length === 0) return [];
  const coarse = new Set(coarseMultiples(multiples));
  const largest = Math.max(...multiples);
  const out: WidthCandidate[] = [];
  for (let m = largest; m <= Math.max(MAX_MULTIPLE, largest); m *= 2) {
    if (coarse.has(m)) out.push({ multiple: m, wholeBlocks: false });
    out.push({ multiple: m, wholeBlocks: true });
  }
  return out;
}

const ruleText = (c: WidthCandidate): string => `${c.wholeBlocks ? 'whole ' : ''}multiples of ${c.multiple}`;

/** What the timing decided: per coarse candidate, measured-widths p50 / its p50 per batch; the best; whether it ships. */
export interface WidthDecision {
  speedups: number[][];
  best: number;
  chosen: WidthCheck['chosen'];
}

const geometricMean = (xs: readonly number[]): number => Math.exp(xs.reduce((s, r) => s + Math.log(r), 0) / xs.length);

/** The fastest coarse candidate by geometric mean over batch sizes, and whether it beat the measured widths by the margin. */
export function decideWidths(measuredMs: readonly number[], coarseMs: readonly (readonly number[])[]): WidthDecision {
  const speedups = coarseMs.map((c) => measuredMs.map((m, i) => m / c[i]));
  const means = speedups.map(geometricMean);
  const best = means.reduce((b, m, i) => (m > means[b] ? i : b), 0);
  return { speedups, best, chosen: means[best] > 1 + COARSE_GAIN ? 'coarse' : 'measured' };
}

const isDecision = (v: unknown): v is WidthDecision =>
  !!v && Array.isArray((v as WidthDecision).speedups) && Number.isInteger((v as WidthDecision).best) && ((v as WidthDecision).chosen === 'measured' || (v as WidthDecision).chosen === 'coarse');

/** Channel counts of a pruned model, as a comparable signature: the same counts give the same file. */
function shapes(m: ModelProto): string {
  return JSON.stringify(m.graph!.initializer.map((t) => t.dims.map(Number)));
}

/**
 * The probes time each layer kind alone, but inside a whole model onnxruntime may also pay for what lies
 * between layers whose widths block differently (such as layout reorders around a layer its blocked kernels do
 * not take), which no single-layer probe sees: a prune on widths each probe found fast can run slower
 * than dense. So a prune on measured widths is timed against the same prune with every group on each
 * coarser multiple (coarseMultiples, those that change a kept count), all interleaved in one pass at the
 * run's batch sizes, and the fastest coarse one ships when it beat the measured widths. The decision is
 * cached per machine, onnxruntime, model and settings, like the probes, so a rerun ships the same file.
 * Each coarse prune is saved as soon as it is made and only the one that ships is made again, so no
 * more than one extra pruned model (with its untied reference) is in memory at a time.
 */
export async function checkWidths(
  first: PruneOutcome,
  dense: ModelProto,
  config: Config,
  ctx: PruneContext & { data: Dataset; dir: string; cacheDir: string; provider: 'cpu' | 'cuda'; timeModels?: TimeModels; shipForm?: ShipForm },
): Promise<PruneOutcome> {
  const a = first.allocation;
  const groups = a?.rounding === 'measured' ? (a.groups ?? []) : [];
  if (!a || groups.length === 0) return first;
  const pruneOn = (c: WidthCandidate): Promise<PruneOutcome> => pruneModel(dense, config, { ...ctx, widths: new Map(groups.map((g) => [g.name, c.multiple])), ...(c.wholeBlocks ? { wholeBlocks: true } : {}) });
  // the files live only while they are timed, in a folder of their own that goes with them
  const parentExisted = fs.existsSync(ctx.dir);
  const dir = path.join(ctx.dir, 'width-check');
  const measuredFile = path.join(dir, 'width-check-measured.onnx');
  const measuredShapes = shapes(first.model);
  const seen = new Set([measuredShapes]);
  const alts: { rule: WidthCandidate; shapes: string; file: string }[] = [];
  const timedAs = ctx.shipForm?.name ?? 'float';
  const save = async (model: ModelProto, file: string): Promise<void> => {
    saveModel(ctx.shipForm ? await ctx.shipForm.convert(model) : model, file);
  };
  fs.mkdirSync(dir, { recursive: true });
  let decision: WidthDecision | undefined;
  let hit = false;
  try {
    for (const rule of widthCandidates(groups.map((g) => g.multiple))) {
      const alt = await pruneOn(rule);
      const model = alt.model;
      const counts = shapes(model);
      if (seen.has(counts) || (alt.channels?.removed ?? 0) < MIN_REMOVED_SHARE * (first.channels?.removed ?? 0)) continue;
      seen.add(counts);
      const file = path.join(dir, `width-check-${rule.multiple}${rule.wholeBlocks ? '-whole' : ''}.onnx`);
      await save(model, file);
      alts.push({ rule, shapes: counts, file });
    }
    if (alts.length === 0) return first;
    const key = JSON.stringify({
      what: 'width-check',
      machine: machineId(),
      ort: onnxruntimeVersion(),
      threads: config.latency.threads,
      batches: config.batchSizes,
      timedAs,
      model: sha256File(ctx.modelPath),
      measured: measuredShapes,
      coarse: alts.map((x) => x.shapes),
    });
    decision = readCached(ctx.cacheDir, key, isDecision);
    hit = !!decision;
    if (!decision) {
      await save(first.model, measuredFile);
      ctx.progress?.note(`channel widths: timing the prune as a whole model${timedAs === 'int8' ? ', quantized to INT8 as it ships,' : ''} against every group on ${alts.map((x) => ruleText(x.rule)).join(', ')}`);
      const [measured, ...coarseMs] = await (ctx.timeModels ?? timeInterleaved(config, ctx))([measuredFile, ...alts.map((x) => x.file)]);
      decision = decideWidths(measured, coarseMs);
      writeCached(ctx.cacheDir, key, decision);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    if (!parentExisted && fs.readdirSync(ctx.dir).length === 0) fs.rmdirSync(ctx.dir);
  }
  const { rule } = alts[decision.best];
  const check: WidthCheck = {
    coarse_multiple: rule.multiple,
    whole_blocks: rule.wholeBlocks,
    batches: [...config.batchSizes],
    speedup: decision.speedups[decision.best],
    chosen: decision.chosen,
    cached: hit,
    timed_as: timedAs,
    tried: alts.map((x, i) => ({ multiple: x.rule.multiple, whole_blocks: x.rule.wholeBlocks, speedup: decision.speedups[i] })),
  };
  if (decision.chosen === 'measured') return { ...first, allocation: { ...a, width_check: check } };
  // the same widths prune to the same model: made again rather than held through the timing
  const alt = await pruneOn(rule);
  return {
    ...alt,
    description: alt.description.replace(/; kept counts snapped to recorded widths: .*$/, `; kept counts snapped to the widths measured to run fast, coarsened by a whole-model timing: ${ruleText(rule)}`),
    allocation: { ...a, groups: groups.map((g) => ({ ...g, multiple: rule.multiple, from: [...(g.from ?? []), `whole-model check: ${ruleText(rule)}`] })), width_check: check },
  };
}

/** The check's timing: the run's latency settings with at most CHECK_TIMING's rounds, interleaved on the evaluation data. */
function timeInterleaved(config: Config, ctx: { data: Dataset; provider: 'cpu' | 'cuda' }): TimeModels {
  return async (files) => {
    const source = sliceBatch(ctx.data, 0, Math.min(ctx.data.count, Math.max(...config.batchSizes)));
    const timing = { warmup: Math.min(config.latency.warmup, CHECK_TIMING.warmup), runs: Math.min(config.latency.runs, CHECK_TIMING.runs) };
    const samples = await measureInterleaved(files, source, { ...config.latency, ...timing, batchSizes: config.batchSizes, provider: ctx.provider });
    return samples.map((perBatch) => perBatch.map((s) => median(s)));
  };
}

/** Structured pruning with `round-to: 0` measures the widths that run fast, at the run's batch sizes and threads. */
export function widthProbes(config: Config, progress: Progress): MeasureOptions | undefined {
  if ((config.method !== 'structured' && config.method !== 'hybrid') || config.roundTo !== 0) return undefined;
  let started = false;
  return {
    batches: config.batchSizes,
    threads: config.latency.threads,
    cacheDir: cacheDir(),
    onProbe: (done, total) => {
      if (!started) progress.stage({ kind: 'latency', detail: `channel widths: ${total} probes, cached per machine`, total });
      started = true;
      progress.update(done);
      if (done === total) {
        progress.stop();
        started = false;
      }
    },
  };
}
