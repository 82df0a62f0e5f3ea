import { describe } from 'vitest';
import { fixture } from '../../support/fixtures.js';
import { topologyCases } from './topology.js';

describe('spatial Pad passes channels; Transpose to channels-last feeds a MatMul on the moved axis', () => {
  topologyCases(fixture('structured/transpose-pad.onnx'), { prunable: 3, groups: ['/c1/Conv', '/c2/Conv', '/lin/MatMul'] });
});
