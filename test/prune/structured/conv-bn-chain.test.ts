import { describe } from 'vitest';
import * as path from 'node:path';
import { REAL_WORLD, fixture, hasRealWorld } from '../../support/fixtures.js';
import { topologyCases } from './topology.js';

describe('Conv -> BatchNorm -> Relu -> MaxPool -> Conv chain (cnn-bn.onnx)', () => {
  topologyCases(fixture('cnn-bn.onnx'), { prunable: 3, skipped: ["reaches graph output 'logits'"] });
});

describe.skipIf(!hasRealWorld)('real-world MNIST CNN: Conv-Pool-Reshape(Constant shape)-Gemm', () => {
  topologyCases(path.join(REAL_WORLD, 'model.onnx'), { prunable: 3, groups: ['/conv1/Conv', '/conv2/Conv', '/fc1/Gemm'] });
});
