import { GraphIndex } from '../onnx/graph.js';
import { nodeMacs } from '../onnx/flops.js';
import type { ModelProto, NodeProto } from '../onnx/proto/onnx_pb.js';
import { inferShapes } from '../onnx/shapes.js';
import { numel } from '../onnx/tensor.js';
import { upstream } from '../onnx/subgraph.js';
import type { DistillUnfit } from './refusals.js';

/**
 * Bounds that keep recovery finite on big models: how much memory a layer refit may hold, and whether a
 * stage's estimated time fits what is left of the recovery time budget (how many samples one
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
 * Assumed speed of the solve's JavaScript loops before one was timed (float64 multiply-adds per second
 * on one core of the 2-core machine the scale numbers come from, under load). After the first refit
 * the measured speed replaces it.
 */
export const PRIOR_FLOPS_PER_SECOND = 2e8;

/**
 * How many calibration samples a layer's input may be captured on so that capture and solve fit the
 * seconds left: all of them when they fit, else the most that fit, but never fewer than supply
 * `spread` times the patches the refit samples (so they still come from many samples); null when not
 * even those fit. The capture cost is linear in samples; the solve does not depend on them.
 */
export function captureSamplesThatFit(opts: { count: number; positionsPerSample: number; maxPatches: number; spread: number; captureSeconds: number; solveSeconds: number; secondsLeft: number }): number | null {
  const { count, captureSeconds, solveSeconds, secondsLeft: left } = opts;
  if (captureSeconds + solveSeconds <= left) return count;
  const fewest = Math.min(count, Math.ceil((opts.spread * opts.maxPatches) / Math.max(1, opts.positionsPerSample)));
  const room = left - solveSeconds;
  const most = captureSeconds > 0 ? Math.floor((count * room) / captureSeconds) : count;
  return most >= fewest ? Math.min(count, most) : null;
}

/** Time left before a deadline (performance.now() ms), in seconds; Infinity without one. */
export function secondsLeft(deadline: number | undefined): number {
  return deadline === undefined ? Infinity : (deadline - performance.now()) / 1000;
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
 * Why one distillation epoch cannot run within the bounds, or null when it can. An epoch costs about
 * (1 + 0.2 + 0.8 x (3 + 1) + 0.2) passes over the calibration set: the teacher's logits, the held-out
 * score before, forward + backward (~3 passes) and the dense hint targets (1 pass) on the 80% trained
 * on, and the held-out score after; plus one pass to judge the result. A training step holds the
 * parameters five times (weights, gradients, Adam's two moments, the best epoch's copy) and every
 * activation of the batch for the backward pass.
 */
export function distillUnfit(model: ModelProto, opts: { batch: number; passSeconds?: number; secondsLeft: number; maxBytes: number }): DistillUnfit | null {
  let params = 0;
  for (const t of model.graph!.initializer) if (t.dataType === 1) params += numel(t.dims.map(Number));
  const perSample = activationBytesPerSample(model);
  const bytes = 5 * 4 * params + opts.batch * perSample;
  if (bytes > opts.maxBytes) return { kind: 'memory', bytes, parameters: params, batch: opts.batch, bytesPerSample: perSample, limitBytes: opts.maxBytes };
  if (opts.passSeconds !== undefined) {
    const epoch = opts.passSeconds * (1 + 0.2 + 0.8 * 4 + 0.2 + 1);
    if (epoch > opts.secondsLeft) return { kind: 'time', epochSeconds: epoch, passSeconds: opts.passSeconds, leftSeconds: opts.secondsLeft };
  }
  return null;
}

/** Most bytes distillation's training step may hold beyond the models (distillUnfit). */
export const DISTILL_MAX_BYTES = 1024 * 2 ** 20;
