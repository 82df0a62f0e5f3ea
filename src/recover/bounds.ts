import { GraphIndex } from '../onnx/graph.js';
import { nodeMacs } from '../onnx/flops.js';
import type { ModelProto, NodeProto } from '../onnx/proto/onnx_pb.js';
import { inferShapes } from '../onnx/shapes.js';
import { numel } from '../onnx/tensor.js';
import { upstream } from '../onnx/subgraph.js';
import type { DistillUnfit } from './refusals.js';

/**
 * Bounds that keep recovery finite on big models: how much memory a layer refit may hold, and whether a
 * stage's estimated work fits what is left of the work allowance (src/recover/work.ts; how many samples one
 * onnxruntime run may take is src/onnx/runtime/activationBudget.ts). Each bound that bites is reported (a progress note and the step description),
 * never applied silently.
 */

/** Multiply-accumulates per sample of every Conv/Gemm/MatMul node, by node (shapes at batch 1). */
export function nodeMacsOf(model: ModelProto): Map<NodeProto, number> {
  const index = new GraphIndex(model.graph!);
  const { shapes } = inferShapes(index, 1);
  const out = new Map<NodeProto, number>();
  for (const n of index.order) {
    if (n.opType !== 'Conv' && n.opType !== 'Gemm' && n.opType !== 'MatMul' && n.opType !== 'ConvTranspose') continue;
    out.set(n, nodeMacs(n, shapes) ?? 0);
  }
  return out;
}

/**
 * Multiply-accumulates per sample of the graph that computes `tensor` (what capturing it costs), from
 * nodeMacsOf's map; the whole model's when the walk cannot bound it (a node with a subgraph).
 */
export function macsBefore(model: ModelProto, tensor: string, macs: Map<NodeProto, number>): number {
  let total = 0;
  for (const n of upstream(model, [tensor])?.nodes ?? macs.keys()) total += macs.get(n) ?? 0;
  return total;
}

/**
 * Bytes a refit of one layer holds at its peak: the Gram matrices H = Xp Xp^T and C = Xd Xp^T over all
 * patches and over the first half (float64, plus onnxruntime's float32 result while widening), the
 * patch matrices, and the inverse and Cholesky factor of the widest block solved at once.
 */
export function refitBytes(patches: number, cp: number, cd: number, block: number): number {
  const grams = 8 * (2 * cp * cp + 2 * cd * cp) + 4 * Math.max(cp * cp, cd * cp);
  const patchBytes = 4 * patches * (cp + cd);
  const solve = 8 * 4 * block * block;
  return grams + patchBytes + solve;
}

/**
 * Floating-point operations of a refit's solve in JavaScript (the Gram products run in onnxruntime and
 * are not counted): per column block of width m, the inverse Hessian (~m^3), the cross-validated damp
 * (2 folds x 5 candidates of a Cholesky and a solve, when m is small enough to cross-validate), the
 * least-squares start and one OBS sweep per start (rows x m^2 each).
 */
export function refitFlops(rows: number, cp: number, cd: number, blocks: readonly number[], starts: number, crossValidateMax: number, groups: number): number {
  let f = 0;
  for (const m of blocks) {
    const dm = blocks.length > 1 ? m : cd;
    f += m ** 3 + rows * dm * m + rows * m * m + starts * rows * m * m;
    if (m <= crossValidateMax) f += 10 * (m ** 3 / 3 + rows * m * m) + 4 * rows * dm * m;
  }
  return f * groups;
}

/** Column blocks a layer of `cp` columns is solved in: one block unless aligned with the dense layer and wider than maxBlock. */
export function columnBlocks(cp: number, aligned: boolean, maxBlock: number): number[] {
  if (!aligned) return [cp];
  const blocks = Math.ceil(cp / maxBlock);
  const size = Math.ceil(cp / blocks);
  const out: number[] = [];
  for (let b0 = 0; b0 < cp; b0 += size) out.push(Math.min(cp, b0 + size) - b0);
  return out;
}

/**
 * How many calibration samples a layer's input may be captured on so that capture and solve fit the
 * work left (MACs): all of them when they fit, else the most that fit, but never fewer than supply
 * `spread` times the patches the refit samples (so they still come from many samples); null when not
 * even those fit. The capture work is linear in samples (`captureWork` is on all `count`); the solve's
 * does not depend on them.
 */
export function captureSamplesThatFit(opts: { count: number; positionsPerSample: number; maxPatches: number; spread: number; captureWork: number; solveWork: number; workLeft: number }): number | null {
  const { count, captureWork, solveWork, workLeft: left } = opts;
  if (captureWork + solveWork <= left) return count;
  const fewest = Math.min(count, Math.ceil((opts.spread * opts.maxPatches) / Math.max(1, opts.positionsPerSample)));
  const room = left - solveWork;
  const most = captureWork > 0 ? Math.floor((count * room) / captureWork) : count;
  return most >= fewest ? Math.min(count, most) : null;
}

/** Bytes per sample of the named tensors, or of every node output when `names` is omitted (shapes at batch 1; unknown shapes count 0). */
export function activationBytesPerSample(model: ModelProto, names?: readonly string[]): number {
  const index = new GraphIndex(model.graph!);
  const { shapes } = inferShapes(index, 1);
  const list = names ?? index.order.flatMap((n) => n.output);
  let total = 0;
  for (const t of list) {
    const s = shapes.get(t);
    if (s) total += numel(s) * 4;
  }
  return total;
}

/**
 * Why one distillation training step does not fit in memory, or null when it does: a step holds the
 * parameters five times (weights, gradients, Adam's two moments, the best epoch's copy) and every
 * activation of the batch for the backward pass. Its work is src/recover/work.ts's (distillEpochsThatFit).
 */
export function distillUnfit(model: ModelProto, opts: { batch: number; maxBytes: number }): DistillUnfit | null {
  let params = 0;
  for (const t of model.graph!.initializer) if (t.dataType === 1) params += numel(t.dims.map(Number));
  const perSample = activationBytesPerSample(model);
  const bytes = 5 * 4 * params + opts.batch * perSample;
  if (bytes > opts.maxBytes) return { kind: 'memory', bytes, parameters: params, batch: opts.batch, bytesPerSample: perSample, limitBytes: opts.maxBytes };
  return null;
}

/** Most bytes distillation's training step may hold beyond the models (distillUnfit). */
export const DISTILL_MAX_BYTES = 1024 * 2 ** 20;
