import { describe, expect, it } from 'vitest';
import { isUserError } from '../../src/errors.js';
import { checkSingleProducers } from '../../src/onnx/preflight.js';
import { mlp } from '../hardening/badModels.js';

function message(f: () => void): string {
  try {
    f();
  } catch (e) {
    expect(isUserError(e), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('one producer per tensor', () => {
  it('two nodes writing one tensor are named with the tensor, not reported as a cycle', () => {
    const m = mlp();
    // a second Relu writing the first one's output
    m.graph!.node.splice(3, 0, { ...m.graph!.node[2], name: '/net/extra/Relu' });
    expect(message(() => checkSingleProducers(m.graph!, 'm.onnx'))).toBe(
      "m.onnx: tensor '/net/net.2/Relu_output_0' has two producers (node '/net/net.2/Relu' (Relu) and node '/net/extra/Relu' (Relu)); each tensor must be written once, fix the export",
    );
  });

  it('a node writing over an initializer or a graph input is refused', () => {
    const m = mlp();
    m.graph!.node[0].output[0] = 'net.1.weight';
    expect(message(() => checkSingleProducers(m.graph!, 'm.onnx'))).toMatch(/tensor 'net\.1\.weight' has two producers \(initializer 'net\.1\.weight' and node/);
    const n = mlp();
    n.graph!.node[0].output[0] = 'input';
    expect(message(() => checkSingleProducers(n.graph!, 'n.onnx'))).toMatch(/tensor 'input' has two producers \(graph input 'input' and node/);
  });

  it('a real cycle is one line, not a stack trace', () => {
    const m = mlp();
    m.graph!.node[1].input[0] = '/net/net.2/Relu_output_0';
    expect(message(() => checkSingleProducers(m.graph!, 'm.onnx'))).toMatch(/^m\.onnx: the graph has a cycle/);
  });

  it('a well-formed model passes', () => {
    expect(() => checkSingleProducers(mlp().graph!, 'mlp.onnx')).not.toThrow();
  });
});
