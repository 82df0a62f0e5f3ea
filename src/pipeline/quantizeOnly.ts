import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomicWrite.js';
import type { Progress } from '../io/progress.js';
import type { ModelLedger } from '../ledger/types.js';
import { prunableWeights } from '../prune/prunable.js';
import { stepFile } from '../recover/runRecovery.js';
import { measureStep } from './measureStep.js';
import { measureQuantized, quantizeLast } from './quantizeStep.js';
import { judgeSteps } from './oneShot.js';
import { collectGarbage, releaseField } from './release.js';
import type { StrategyInput } from './request.js';

/**
 * `--quantize int8 --sparsity 0`: no pruning and no recovery, only the float input and its quantized
 * version, measured and judged like any run.
 */
export async function runQuantizeOnly(input: StrategyInput, progress: Progress): Promise<ModelLedger> {
  const { req, data, shifts, calib, outPath } = input;
  const { config } = req;
  const denseWeights = prunableWeights(input.dense.proto, { exclude: config.exclude, keepFirstLayer: false, keepLastLayer: false });
  releaseField(input.dense, 'proto', 'the dense model');
  const stepsDir = path.join(req.out, 'steps');
  fs.mkdirSync(stepsDir, { recursive: true });
  const quantized = (await quantizeLast(req.model, calib, config, stepFile(stepsDir, 1, `quantize-${config.quantize}`), progress, input.provider))!;
  writeFileAtomic(outPath, fs.readFileSync(quantized.artifact));
  collectGarbage();
  const ctx = { data, shifts, denseWeights, config, progress, provider: input.provider };
  const dense = await measureStep({ kind: 'dense' }, 'input model, unchanged', req.model, ctx);
  const shipped = await measureQuantized(quantized, { ...ctx, dense: dense.preds });
  return judgeSteps(input, [dense, shipped], progress, { targetSparsity: 0, notes: quantized.notes, scope: config.scope === 'auto' ? 'global' : config.scope });
}
