import type { AttrValue } from '../build.js';
import { valueInfo } from '../build.js';
import { ModelEditor } from '../edit.js';
import { serializeModel } from '../model.js';
import type { ModelProto } from '../proto/onnx_pb.js';
import { onnxruntime, type OrtSession } from './ort.js';

/**
 * One MAC layer re-created alone at chosen channel counts, to time how its latency responds to them:
 * a Conv with the layer's kernel, strides, pads and dilations on its input's spatial size, a depthwise
 * Conv whose channels are both counts, or a Gemm/MatMul on its row count.
 */
export interface ProbeLayer {
  opType: 'Conv' | 'Gemm' | 'MatMul';
  depthwise: boolean;
  /** Conv: the input's spatial dims; Gemm/MatMul: [] */
  spatial: number[];
  /** MatMul: rows per sample in front of the reduced axis (tokens); 1 otherwise */
  rows: number;
  /** Conv: kernel_shape, strides, pads, dilations, auto_pad as the layer has them; Gemm: transB */
  attrs: Record<string, AttrValue>;
}

/** Deterministic weights: constant values could let a kernel take a shortcut a trained weight never gives it. */
function pattern(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 0.1;
  }
  return out;
}

export function probeInputDims(layer: ProbeLayer, batch: number, cin: number): number[] {
  if (layer.opType === 'Conv') return [batch, cin, ...layer.spatial];
  if (layer.opType === 'MatMul' && layer.rows > 1) return [batch, layer.rows, cin];
  return [batch, cin];
}

/** A one-node model of `layer` with `cin` input and `cout` output channels (a depthwise layer: both `cin`). */
export function probeModel(layer: ProbeLayer, batch: number, cin: number, cout: number): ModelProto {
  const ed = ModelEditor.empty(13, 'probe');
  ed.addInput(valueInfo('x', undefined, probeInputDims(layer, batch, cin)));
  let wDims: number[];
  const attrs: Record<string, AttrValue> = { ...layer.attrs };
  if (layer.opType === 'Conv') {
    const kernel = (layer.attrs.kernel_shape as readonly number[]) ?? layer.spatial.map(() => 1);
    const out = layer.depthwise ? cin : cout;
    wDims = [out, layer.depthwise ? 1 : cin, ...kernel];
    attrs.group = layer.depthwise ? cin : 1;
  } else if (layer.opType === 'Gemm') {
    wDims = attrs.transB ? [cout, cin] : [cin, cout];
  } else {
    wDims = [cin, cout];
  }
  const w = ed.addFloatInitializer('w', wDims, pattern(wDims.reduce((a, b) => a * b, 1), cin * 131 + cout));
  ed.addNode({ opType: layer.opType, inputs: ['x', w], outputs: ['y'], attrs });
  ed.declareOutput(valueInfo('y'));
  return ed.model;
}

/**
 * The smallest model a session can run (one Relu on one value): its time is what every run costs beyond
 * its kernels (feeds, outputs, the session's own bookkeeping), which a one-layer probe pays once per
 * layer and the whole model pays once.
 */
export function overheadModel(): { model: ModelProto; inputDims: number[] } {
  const ed = ModelEditor.empty(13, 'overhead');
  ed.addInput(valueInfo('x', undefined, [1, 1]));
  ed.addNode({ opType: 'Relu', inputs: ['x'], outputs: ['y'] });
  ed.declareOutput(valueInfo('y'));
  return { model: ed.model, inputDims: [1, 1] };
}

export interface ProbeTiming {
  threads: number;
  /** timed rounds; every round runs each model once, in alternating order */
  rounds: number;
}

/**
 * Best-of-rounds latency (ms) of each model on its own input, measured interleaved: a minimum over
 * rounds is what the kernel costs when nothing else preempts it, which on a busy shared runner is far
 * steadier than a median. One warm-up round is not timed.
 */
export async function bestTimes(models: readonly { model: ModelProto; inputDims: number[] }[], opts: ProbeTiming): Promise<number[]> {
  const { ort } = onnxruntime();
  const sessions: OrtSession[] = [];
  const largest = Math.max(...models.map((m) => m.inputDims.reduce((a, b) => a * b, 1)));
  const buffer = pattern(largest, 7);
  const best = models.map(() => Infinity);
  try {
    for (const m of models) {
      sessions.push(
        await ort.InferenceSession.create(serializeModel(m.model), {
          executionProviders: ['cpu'],
          graphOptimizationLevel: 'all',
          executionMode: 'sequential',
          intraOpNumThreads: opts.threads,
          interOpNumThreads: 1,
        }),
      );
    }
    const feeds = models.map((m) => ({ x: new ort.Tensor('float32', buffer.subarray(0, m.inputDims.reduce((a, b) => a * b, 1)), m.inputDims) }));
    for (let r = 0; r <= opts.rounds; r++) {
      const order = sessions.map((_, i) => i);
      if (r % 2 === 1) order.reverse();
      for (const i of order) {
        const t0 = performance.now();
        const out = await sessions[i].run(feeds[i]);
        const dt = performance.now() - t0;
        for (const t of Object.values(out)) t.dispose();
        if (r > 0) best[i] = Math.min(best[i], dt);
      }
    }
  } finally {
    for (const s of sessions) await s.release();
  }
  return best;
}
