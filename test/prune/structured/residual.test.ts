import { describe } from 'vitest';
import { fixture } from '../../support/fixtures.js';
import { topologyCases } from './topology.js';

describe('residual Adds couple the branches (resnet.onnx, with an Identity-aliased BatchNorm bias)', () => {
  topologyCases(fixture('resnet.onnx'), {
    prunable: 9,
    groups: [
      '/stem/stem.0/Conv + /blocks/blocks.0/conv2/Conv + /blocks/blocks.1/conv2/Conv',
      '/blocks/blocks.2/downsample/downsample.0/Conv + /blocks/blocks.2/conv2/Conv + /blocks/blocks.3/conv2/Conv',
    ],
  });
});
