import { describe } from 'vitest';
import { fixture, realWorld } from '../../support/fixtures.js';
import { topologyCases } from './topology.js';

describe('Conv -> BatchNorm -> Relu -> MaxPool -> Conv chain (cnn-bn.onnx)', () => {
  topologyCases(fixture('cnn-bn.onnx'), { prunable: 3, skipped: ["reaches graph output 'logits'"] });
});

describe('real-world MNIST CNN: Conv-Pool-Reshape(Constant shape)-Gemm', () => {
  topologyCases(realWorld('model.onnx'), { prunable: 3, groups: ['/conv1/Conv', '/conv2/Conv', '/fc1/Gemm'] });
});
