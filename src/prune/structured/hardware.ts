import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { readCached, writeCached } from '../../io/measureCache.js';
import { onnxruntimeVersion } from '../../onnx/runtime/ort.js';
import { bestTimes, overheadModel, probeInputDims, probeModel, type ProbeLayer } from '../../onnx/runtime/probe.js';
import type { MacLayer } from './macLayers.js';
import type { LayerTable } from './latencyModel.js';
import { allowedWidths, chooseMultiple, type WidthCurve } from './widths.js';

/** Channel counts every probe times: a window holding at least two widths of every candidate multiple. */
export const PROBE_COUNTS: readonly number[] = Array.from({ length: 33 }, (_, i) => 40 + i);
/** Probes above this many MACs per run are made cheaper by halving their spatial size (channel blocking does not depend on it). */
const PROBE_MAC_CAP = 3e7;
const PROBE_ROUNDS = 4;

/** Which channel axis of a layer kind a probe varies. */
export type ProbeAxis = 'out' | 'in' | 'channels';

/** One measured curve of a layer kind and the multiple read from it: the rounding table's rows. */
export interface KindProbe {
  kind: string;
  axis: ProbeAxis;
  batch: number;
  /** the other axis, held at the layer's dense count (a depthwise probe varies both together: 0) */
  fixed: number;
  /** spatial size the probe ran at (the layer's, halved while a run would exceed the cost cap) */
  spatial: number[];
  curve: WidthCurve;
  multiple: number;
  /** channels per millisecond at each candidate multiple's widths, relative to the best */
  scores: { multiple: number; score: number }[];
  /** read from the measurement cache rather than timed in this run */
  cached: boolean;
}

export interface GroupWidth {
  root: number;
  name: string;
  multiple: number;
  /** the probes that set it: kind and axis of the layers reading or writing the group's channels */
  from: string[];
}

/** What the hardware-aware allocation measured and decided, recorded in the ledger so the widths can be reproduced. */
export interface WidthTable {
  machine: string;
  onnxruntime: string;
  threads: number;
  batches: number[];
  probes: KindProbe[];
  groups: GroupWidth[];
}

/**
 * The processor, what it can execute and how many cores it has (threads 0 means all of them, and hosted
 * runners of one CPU model come with different core counts): a cache written on another machine is not read.
 */
export function machineId(): string {
  let flags = '';
  try {
    flags = /^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? '';
  } catch {
    // not Linux: the model name and architecture have to do
  }
  const cpu = os.cpus()[0]?.model ?? 'cpu';
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  return `${cpu} ${process.arch} ${cores} cores ${createHash('sha256').update(flags).digest('hex').slice(0, 12)}`;
}

interface ProbeSpec {
  kind: string;
  axis: ProbeAxis;
  batch: number;
  fixed: number;
  layer: ProbeLayer;
}

/** The probes a set of layers needs: per kind, each axis some layer's group sets, at each batch size. */
export function probeSpecs(layers: readonly MacLayer[], batches: readonly number[]): ProbeSpec[] {
  const byKind = new Map<string, MacLayer[]>();
  for (const l of layers) {
    if (l.inRoots.length === 0 && l.outRoots.length === 0) continue;
    byKind.set(l.kind, [...(byKind.get(l.kind) ?? []), l]);
  }
  const specs: ProbeSpec[] = [];
  for (const [kind, list] of byKind) {
    // the kind's costliest layer stands for it
    const rep = list.reduce((a, b) => (b.macs > a.macs ? b : a));
    const axes: { axis: ProbeAxis; fixed: number }[] = rep.probe.depthwise
      ? [{ axis: 'channels', fixed: 0 }]
      : [
          ...(list.some((l) => l.outRoots.length > 0) ? [{ axis: 'out' as const, fixed: rep.cin }] : []),
          ...(list.some((l) => l.inRoots.length > 0) ? [{ axis: 'in' as const, fixed: rep.cout }] : []),
        ];
    for (const b of batches) for (const a of axes) specs.push({ kind, axis: a.axis, batch: b, fixed: a.fixed, layer: rep.probe });
  }
  return specs;
}

function probeCost(layer: ProbeLayer, batch: number, fixed: number): number {
  const kernel = ((layer.attrs.kernel_shape as readonly number[] | undefined) ?? []).reduce((a, b) => a * b, 1);
  const spatial = layer.spatial.reduce((a, b) => a * b, 1);
  const top = PROBE_COUNTS[PROBE_COUNTS.length - 1];
  return batch * layer.rows * spatial * kernel * (layer.depthwise ? top : top * Math.max(fixed, 1));
}

/** The probe layer with its spatial size halved until one run stays under the cost cap. */
function boundedLayer(layer: ProbeLayer, batch: number, fixed: number): ProbeLayer {
  let l = layer;
  while (l.spatial.some((d) => d > 4) && probeCost(l, batch, fixed) > PROBE_MAC_CAP) l = { ...l, spatial: l.spatial.map((d) => Math.max(4, Math.ceil(d / 2))) };
  return l;
}

const isCurve = (v: unknown): v is WidthCurve =>
  !!v && Array.isArray((v as WidthCurve).counts) && Array.isArray((v as WidthCurve).ms) && (v as WidthCurve).counts.length === (v as WidthCurve).ms.length && (v as WidthCurve).ms.every((x) => typeof x === 'number' && x > 0);

export interface MeasureOptions {
  batches: readonly number[];
  threads: number;
  cacheDir: string;
  onProbe?: (done: number, total: number) => void;
}

async function measureCurve(spec: ProbeSpec, layer: ProbeLayer, threads: number): Promise<WidthCurve> {
  const models = PROBE_COUNTS.map((c) => {
    const cin = spec.axis === 'out' ? spec.fixed : c;
    const cout = spec.axis === 'in' ? spec.fixed : c;
    return { model: probeModel(layer, spec.batch, cin, cout), inputDims: probeInputDims(layer, spec.batch, cin) };
  });
  return { counts: [...PROBE_COUNTS], ms: await bestTimes(models, { threads, rounds: PROBE_ROUNDS }) };
}

/** Each probe's curve and multiple, read from the cache or timed (and then cached). */
export async function measureProbes(layers: readonly MacLayer[], opts: MeasureOptions): Promise<Omit<WidthTable, 'groups'>> {
  const machine = machineId();
  const ort = onnxruntimeVersion();
  const specs = probeSpecs(layers, opts.batches);
  const probes: KindProbe[] = [];
  for (const [i, spec] of specs.entries()) {
    const layer = boundedLayer(spec.layer, spec.batch, spec.fixed);
    const key = JSON.stringify({ what: 'width-probe', machine, ort, threads: opts.threads, batch: spec.batch, axis: spec.axis, fixed: spec.fixed, layer, counts: PROBE_COUNTS, rounds: PROBE_ROUNDS });
    const hit = readCached(opts.cacheDir, key, isCurve);
    const curve = hit ?? (await measureCurve(spec, layer, opts.threads));
    if (!hit) writeCached(opts.cacheDir, key, curve);
    const choice = chooseMultiple(curve);
    probes.push({ kind: spec.kind, axis: spec.axis, batch: spec.batch, fixed: spec.fixed, spatial: layer.spatial, curve, multiple: choice.multiple, scores: choice.scores, cached: !!hit });
    opts.onProbe?.(i + 1, specs.length);
  }
  return { machine, onnxruntime: ort, threads: opts.threads, batches: [...opts.batches], probes };
}

/**
 * Each group's multiple: the largest any layer touching its channels asks for, at any batch size (the
 * candidates are powers of two, so the largest is a multiple of all the others): its producers' output
 * probes, its consumers' input probes, its depthwise layers' channel probes.
 */
export function groupMultiples(layers: readonly MacLayer[], probes: readonly KindProbe[], groups: readonly { root: number; name: string }[]): GroupWidth[] {
  const multipleOf = (kind: string, axis: ProbeAxis): number => Math.max(1, ...probes.filter((p) => p.kind === kind && p.axis === axis).map((p) => p.multiple));
  return groups.map((g) => {
    let multiple = 1;
    const from = new Set<string>();
    for (const l of layers) {
      const axes: ProbeAxis[] = l.probe.depthwise
        ? l.inRoots.includes(g.root) ? ['channels'] : []
        : [...(l.outRoots.includes(g.root) ? ['out' as const] : []), ...(l.inRoots.includes(g.root) ? ['in' as const] : [])];
      for (const a of axes) {
        const m = multipleOf(l.kind, a);
        from.add(`${l.kind} (${a === 'channels' ? 'channels' : `${a}put channels`}): ${m}`);
        multiple = Math.max(multiple, m);
      }
    }
    return { root: g.root, name: g.name, multiple, from: [...from].sort() };
  });
}

/** At most this many kept counts per layer axis are timed; the model interpolates between them. */
const TABLE_POINTS = 6;

/** Up to `n` widths spread over the list, the smallest and the largest always among them. */
export function spread(list: readonly number[], n: number): number[] {
  if (list.length <= n) return [...list];
  return [...new Set(Array.from({ length: n }, (_, i) => list[Math.round((i * (list.length - 1)) / (n - 1))]))];
}

const isTable = (v: unknown): v is { ms: number; inCurve: LayerTable['inCurve']; outCurve: LayerTable['outCurve'] } =>
  !!v && typeof (v as LayerTable).ms === 'number' && Array.isArray((v as LayerTable).inCurve) && Array.isArray((v as LayerTable).outCurve);

/**
 * The per-layer latency table of every layer a prunable group touches, at the layer's real shape and
 * `batch`: its dense time and its time at a few fast widths of each axis a group sets (the other axis
 * dense), all of one layer timed interleaved. Cached per layer shape, like the width probes.
 */
export async function measureLayerTables(layers: readonly MacLayer[], widths: readonly GroupWidth[], opts: { batch: number; threads: number; cacheDir: string; onLayer?: (done: number, total: number) => void }): Promise<LayerTable[]> {
  const machine = machineId();
  const ort = onnxruntimeVersion();
  const multiple = new Map(widths.map((w) => [w.root, w.multiple]));
  const grid = (root: number | undefined, dense: number): number[] => (root === undefined || !multiple.has(root) ? [] : spread(allowedWidths(dense, multiple.get(root)!), TABLE_POINTS));
  const tables: LayerTable[] = [];
  const relevant = layers.filter((l) => (l.inRoot !== undefined && multiple.has(l.inRoot)) || (l.outRoot !== undefined && multiple.has(l.outRoot)));
  for (const [i, l] of relevant.entries()) {
    const inGrid = grid(l.inRoot, l.cin);
    const outGrid = l.probe.depthwise ? [] : grid(l.outRoot, l.cout);
    const key = JSON.stringify({ what: 'layer-table', machine, ort, threads: opts.threads, batch: opts.batch, probe: l.probe, cin: l.cin, cout: l.cout, inGrid, outGrid, rounds: PROBE_ROUNDS });
    let hit = readCached(opts.cacheDir, key, isTable);
    if (!hit) {
      const points = [{ cin: l.cin, cout: l.cout }, ...inGrid.map((c) => ({ cin: c, cout: l.cout })), ...outGrid.map((c) => ({ cin: l.cin, cout: c }))];
      const timed = await bestTimes(
        [overheadModel(), ...points.map((p) => ({ model: probeModel(l.probe, opts.batch, p.cin, p.cout), inputDims: probeInputDims(l.probe, opts.batch, p.cin) }))],
        { threads: opts.threads, rounds: PROBE_ROUNDS },
      );
      // what the layer costs inside a model: its run minus a run's fixed cost (never below a tenth of it)
      const ms = timed.slice(1).map((t) => Math.max(t - timed[0], t / 10));
      hit = {
        ms: ms[0],
        inCurve: inGrid.map((count, j) => ({ count, ms: ms[1 + j] })),
        outCurve: outGrid.map((count, j) => ({ count, ms: ms[1 + inGrid.length + j] })),
      };
      writeCached(opts.cacheDir, key, hit);
    }
    tables.push({ node: l.node, inRoot: l.inRoot, outRoot: l.outRoot, depthwise: l.probe.depthwise, cin: l.cin, cout: l.cout, ...hit });
    opts.onLayer?.(i + 1, relevant.length);
  }
  return tables;
}
