import { describe } from 'vitest';
import { fixture } from '../../support/fixtures.js';
import { topologyCases } from './topology.js';

describe('Gemm with transB (mlp.onnx)', () => {
  topologyCases(fixture('mlp.onnx'), { prunable: 2 });
});

describe('MatMul with an [in, out] weight, MatMul+Add on 3-D input, Flatten into Gemm', () => {
  // the [B, 28, 24] -> Flatten(axis 1) interleaves channels with tokens: refused with its reason
  topologyCases(fixture('structured/matmul-layouts.onnx'), { prunable: 2, groups: ['/MatMul', '/l3/Gemm'], skipped: ['flattens the channel axis into the middle'] });
});
