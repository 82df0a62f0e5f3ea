import { describe } from 'vitest';
import { fixture } from '../../support/fixtures.js';
import { topologyCases } from './topology.js';

describe('Reshape(-1, C*H*W) after a conv removes H*W blocks of the next fan-in and rewrites the shape', () => {
  topologyCases(fixture('structured/reshape-flatten.onnx'), { prunable: 3, groups: ['/c2/Conv'] });
});
