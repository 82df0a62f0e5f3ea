import { describe } from 'vitest';
import { fixture } from '../../support/fixtures.js';
import { topologyCases } from './topology.js';

describe('Reshape(-1, C*H*W) after a conv removes H*W blocks of the next fan-in and rewrites the shape', () => {
  topologyCases(fixture('structured/reshape-flatten.onnx'), { prunable: 3, groups: ['/c2/Conv'] });
});

describe("x.flatten(2) with a dynamic batch: the target copies the channel count from the tensor's own shape, which follows the pruned count by itself", () => {
  topologyCases(fixture('structured/flatten-own-shape.onnx'), { prunable: 2, groups: ['/c/Conv', '/c2/Conv'] });
});
