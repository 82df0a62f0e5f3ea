import { describe } from 'vitest';
import { fixture } from '../../support/fixtures.js';
import { topologyCases } from './topology.js';

describe('Concat of two depthwise-separable branches (dsconv-concat.onnx): per-input offsets', () => {
  topologyCases(fixture('dsconv-concat.onnx'), { prunable: 5, groups: ['/branch3/pw/Conv', '/branch5/pw/Conv'] });
});
