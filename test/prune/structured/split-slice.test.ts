import { describe } from 'vitest';
import { fixture } from '../../support/fixtures.js';
import { topologyCases } from './topology.js';

describe('Split sizes and Slice bounds on the channel axis are rewritten', () => {
  topologyCases(fixture('structured/split-slice.onnx'), { prunable: 4, groups: ['/c1/Conv'] });
});
