import { describe } from 'vitest';
import { fixture } from '../../support/fixtures.js';
import { topologyCases } from './topology.js';

describe('depthwise Conv follows its input channels (dsconv-concat.onnx stem through two depthwise convs)', () => {
  topologyCases(fixture('dsconv-concat.onnx'), { prunable: 5, groups: ['/stem/stem.0/Conv'] });
});

describe('grouped Conv (groups=4) and depthwise with multiplier 2 are reported, not guessed', () => {
  topologyCases(fixture('structured/grouped.onnx'), { prunable: 0, skipped: ['grouped convolution (group=4', 'grouped convolution (group=24'] });
});
