import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/schema.js';
import { loadDataset, takeSamples } from '../../src/data/dataset.js';
import { loadModel } from '../../src/onnx/model.js';
import { defaultHead } from '../../src/onnx/runtime/classifier.js';
import { QUALITY_THREADS } from '../../src/onnx/runtime/quality.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { reconstructedScore } from '../../src/pipeline/heldOutScore.js';
import { pruneModel } from '../../src/prune/pruneModel.js';
import { calibScore } from '../../src/recover/calibScore.js';
import { fixture } from '../support/fixtures.js';
import { firstSamples } from '../support/slice.js';

describe('scoring a candidate after a quick reconstruction', () => {
  it('refits within the work it is given: none leaves the pruned model as it was, enough repairs it', async () => {
    const dense = loadModel(fixture('cnn-bn.onnx')).proto;
    const calib = loadDataset(firstSamples(fixture('fmnist-calib.npz'), 64), modelInputs(dense, 'cnn-bn.onnx'), { requireLabels: true });
    const pruned = await pruneModel(dense, { ...structuredClone(DEFAULT_CONFIG), method: 'structured', sparsity: 0.5, roundTo: 1 }, { modelPath: 'cnn-bn.onnx' });
    const head = defaultHead(dense);
    const held = takeSamples(calib, Array.from({ length: 32 }, (_, i) => 2 * i + 1));
    const unrefit = await calibScore(pruned.model, held, QUALITY_THREADS, head);
    expect(await reconstructedScore(dense, calib, head, 0)(pruned)).toEqual(unrefit);
    const refit = await reconstructedScore(dense, calib, head, Infinity)(pruned);
    expect(refit.nll).toBeLessThan(unrefit.nll * 0.9);
  });
});
