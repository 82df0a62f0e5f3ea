import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type Config } from '../../src/config/schema.js';
import { loadDataset } from '../../src/data/dataset.js';
import { loadModel } from '../../src/onnx/model.js';
import { defaultHead } from '../../src/onnx/runtime/classifier.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { chooseAutoScope, pickScore, replaces } from '../../src/pipeline/scopeChoice.js';
import { pruneModel } from '../../src/prune/pruneModel.js';
import { cliInProcess, FAST } from '../support/exportRuns.js';
import { fixture, realWorldDir } from '../support/fixtures.js';
import { firstSamples } from '../support/slice.js';

describe('which cut scope auto ships', () => {
  it('a candidate replaces the loss-per-MAC cut only with a lower NLL and an accuracy clearly higher', () => {
    // one sample of 256 better is noise; ten points on a coin-flip model is not
    expect(replaces({ accuracy: 0.9883, nll: 0.036 }, { accuracy: 0.9844, nll: 0.051 }, 256)).toBe(false);
    expect(replaces({ accuracy: 0.556, nll: 1.309 }, { accuracy: 0.456, nll: 1.615 }, 250)).toBe(true);
    // clearly more accurate but a worse NLL: not replaced
    expect(replaces({ accuracy: 0.556, nll: 1.7 }, { accuracy: 0.456, nll: 1.615 }, 250)).toBe(false);
    // the first wins ties; a later candidate must beat the best so far
    expect(pickScore([{ accuracy: 0.5, nll: 1 }, { accuracy: 0.5, nll: 1 }], 250)).toBe(0);
    expect(pickScore([{ accuracy: 0.3, nll: 2 }, { accuracy: 0.5, nll: 1.5 }, { accuracy: 0.52, nll: 1.4 }], 250)).toBe(1);
  });

  const structured = (over: Partial<Config> = {}): Config => ({ ...structuredClone(DEFAULT_CONFIG), method: 'structured', sparsity: 0.3, scope: 'sensitivity-macs', ...over });

  it('on the real-world CIFAR-10 CNN at 30% the loss-per-MAC cut gives way to layer scope after the quick reconstruction', async () => {
    // the curves put 75% of its most sensitive conv on the cut; layer scope recovers far better
    const dir = realWorldDir('cifar10-cnn');
    const dense = loadModel(path.join(dir, 'model.onnx')).proto;
    const calib = loadDataset(firstSamples(path.join(dir, 'calib.npz'), 250), modelInputs(dense, 'model.onnx'), { requireLabels: true });
    const head = defaultHead(dense);
    const ctx = { modelPath: 'model.onnx', calib, head, widths: new Map<string, number>() };
    const first = await pruneModel(dense, structured(), ctx);
    expect(first.scope).toBe('sensitivity-macs');
    const choice = await chooseAutoScope(first, dense, structured(), ctx);
    expect(choice.candidates.map((c) => c.scope)).toEqual(['sensitivity-macs', 'layer', 'global']);
    expect(choice.candidates[0].after).toBeDefined();
    expect(choice.candidates[choice.chosen].scope).not.toBe('sensitivity-macs');
    expect(choice.pruned.scope).toBe(choice.candidates[choice.chosen].scope);
    expect(choice.candidates[choice.chosen].after!.accuracy).toBeGreaterThan(choice.candidates[0].after!.accuracy + 0.05);
    expect(choice.note).toMatch(/layer|global/);
    expect(choice.note).toMatch(/ships \(lower held-out NLL/);
  });

  /** cnn-bn's loss-per-MAC cut at 30% on its first `count` calibration samples, and the choice made for it. */
  async function cnnBnChoice(count: number) {
    const dense = loadModel(fixture('cnn-bn.onnx')).proto;
    const calib = loadDataset(firstSamples(fixture('fmnist-calib.npz'), count), modelInputs(dense, 'cnn-bn.onnx'), { requireLabels: true });
    const ctx = { modelPath: 'cnn-bn.onnx', calib, head: defaultHead(dense), widths: new Map<string, number>() };
    const first = await pruneModel(dense, structured(), ctx);
    return { dense, ctx, first, choice: await chooseAutoScope(first, dense, structured(), ctx) };
  }

  it('with fewer than 20 scoring samples the loss-per-MAC cut ships unweighed, and the note says why', async () => {
    const { dense, ctx, first, choice } = await cnnBnChoice(30);
    expect(choice.pruned).toBe(first);
    expect(choice.candidates).toEqual([]);
    expect(choice.note).toMatch(/15 calibration samples would score them, fewer than 20/);
    // without recovery all 30 score the cuts as made
    expect((await chooseAutoScope(first, dense, structured({ recovery: 'none' }), ctx)).candidates).toHaveLength(3);
  });

  it('on cnn-bn the cut as made settles it: no alternative is clearly better, nothing is reconstructed, the same model ships', async () => {
    const { first, choice } = await cnnBnChoice(256);
    expect(choice.chosen).toBe(0);
    expect(choice.pruned).toBe(first);
    expect(choice.candidates.every((c) => c.after === undefined)).toBe(true);
    expect(choice.note).toMatch(/sensitivity-macs ships$/);
  });
});

describe('scope auto in a run', () => {
  it('the CIFAR-10 CNN at 30% without recovery ships the layer-scope cut on the score as cut, and the ledger says why', async () => {
    const dir = realWorldDir('cifar10-cnn');
    const r = await cliInProcess(['run', '--model', path.join(dir, 'model.onnx'), '--data', firstSamples(path.join(dir, 'test.npz'), 200), '--calib', path.join(dir, 'calib.npz'), '--method', 'structured', '--sparsity', '0.3', '--recovery', 'none', ...FAST]);
    expect([0, 1], r.stderr).toContain(r.code);
    expect(r.model!.scope).toBe('layer');
    const note = r.model!.notes!.find((n) => n.startsWith('scope auto: the sensitivity-macs cut weighed against layer and global scope'))!;
    expect(note).toMatch(/, as cut \(/);
    expect(note).not.toMatch(/->/);
    expect(note).toMatch(/layer ships/);
    expect(r.model!.sensitivity).toBeUndefined();
  });
});
