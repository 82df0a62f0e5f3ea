/**
 * Widths each probe found fast can still run slower as a whole model, so a prune on measured widths is
 * timed against the same prune on one coarser multiple and the faster ships; the decision is cached so a
 * rerun ships the same file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/schema.js';
import { loadDataset } from '../../src/data/dataset.js';
import { loadModel } from '../../src/onnx/model.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { checkWidths, coarseMultiples, decideWidths, MIN_REMOVED_SHARE, widthCandidates, type TimeModels } from '../../src/pipeline/widthCheck.js';
import { int8ShipForm } from '../../src/pipeline/quantizeStep.js';
import { pruneModel } from '../../src/prune/pruneModel.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { firstSamples } from '../support/slice.js';

describe('the multiples a whole-model check tries', () => {
  it('first the largest any group asked for, then its doublings up to 32', () => {
    expect(coarseMultiples([8, 8, 4])).toEqual([8, 16, 32]);
    expect(coarseMultiples([16, 16])).toEqual([32]);
    expect(coarseMultiples([32])).toEqual([]);
    expect(coarseMultiples([])).toEqual([]);
  });

  it('each coarse multiple with halvings below it, and from the largest asked for on, each in whole blocks too', () => {
    expect(widthCandidates([16, 16])).toEqual([
      { multiple: 16, wholeBlocks: true },
      { multiple: 32, wholeBlocks: false },
      { multiple: 32, wholeBlocks: true },
    ]);
    expect(widthCandidates([8, 4]).map((c) => `${c.multiple}${c.wholeBlocks ? 'w' : ''}`)).toEqual(['8', '8w', '16', '16w', '32', '32w']);
    expect(widthCandidates([64])).toEqual([{ multiple: 64, wholeBlocks: true }]);
    expect(widthCandidates([])).toEqual([]);
  });

  it('takes the fastest coarse prune, and ships it only when it beat the measured widths by more than the margin', () => {
    expect(decideWidths([1, 10], [[0.8, 7]])).toEqual({ speedups: [[1.25, 10 / 7]], best: 0, chosen: 'coarse' });
    expect(decideWidths([1, 10], [[1, 9.9]]).chosen).toBe('measured');
    // faster at one batch size, slower at the other: the geometric mean decides
    expect(decideWidths([1, 10], [[0.7, 12]]).chosen).toBe('coarse');
    expect(decideWidths([1, 10], [[0.9, 12]]).chosen).toBe('measured');
    // the first coarse multiple gains nothing, the next one does
    expect(decideWidths([1, 10], [[0.99, 9.8], [0.75, 6.5], [0.8, 7]])).toMatchObject({ best: 1, chosen: 'coarse' });
  });
});

describe('checking measured widths on the whole model', () => {
  const dense = loadModel(fixture('cnn-bn.onnx')).proto;
  const data = loadDataset(firstSamples(fixture('fmnist-test.npz'), 32), modelInputs(dense, 'cnn-bn.onnx'), { requireLabels: false });
  const config = { ...structuredClone(DEFAULT_CONFIG), method: 'structured' as const, sparsity: 0.3, batchSizes: [1, 32] };
  /** a prune on measured widths, its multiples as a probe on some machine may have read them */
  async function measured() {
    const first = await pruneModel(dense, config, { modelPath: fixture('cnn-bn.onnx'), widths: new Map() });
    const groups = first.allocation!.groups!.map((g, i) => ({ ...g, multiple: [8, 8, 4][i] ?? 8 }));
    const again = await pruneModel(dense, config, { modelPath: fixture('cnn-bn.onnx'), widths: new Map(groups.map((g) => [g.name, g.multiple])) });
    return { ...again, allocation: { ...again.allocation!, rounding: 'measured' as const, groups } };
  }
  const timing = (coarseFaster: boolean): TimeModels & { calls: number } => {
    const f = async (files: readonly string[]) => {
      f.calls++;
      // the measured widths first, then one prune per coarse multiple that changes a kept count (on 8
      // only the group on 4 would move, to the same counts here)
      expect(files.map((x) => path.basename(x))).toEqual(['width-check-measured.onnx', 'width-check-16.onnx', 'width-check-32.onnx']);
      return [[1, 10], coarseFaster ? [0.7, 6] : [1.2, 11], [1.1, 10]];
    };
    f.calls = 0;
    return f;
  };

  it('ships every group on the coarser multiple when that ran faster, says so, and reads the decision back on a rerun', async () => {
    const first = await measured();
    const cache = tempDir();
    const time = timing(true);
    const stepsDir = path.join(tempDir(), 'steps');
    const ctx = { modelPath: fixture('cnn-bn.onnx'), data, dir: stepsDir, cacheDir: cache, provider: 'cpu' as const, timeModels: time };
    const out = await checkWidths(first, dense, config, ctx);
    const check = out.allocation!.width_check!;
    expect(check).toMatchObject({ coarse_multiple: 16, batches: [1, 32], chosen: 'coarse', cached: false });
    expect(check.tried.map((t) => t.multiple)).toEqual([16, 32]);
    expect(out.allocation!.groups!.every((g) => g.multiple === 16)).toBe(true);
    expect(out.allocation!.rounding).toBe('measured');
    expect(out.description).toMatch(/coarsened by a whole-model timing: multiples of 16/);
    expect(out.model).not.toBe(first.model);
    // the timed files are gone, and so is the folder the check made for them
    expect(fs.existsSync(stepsDir)).toBe(false);
    // the same prune again: decided from the cache, not timed, the same file
    const rerun = await checkWidths(await measured(), dense, config, ctx);
    expect(time.calls).toBe(1);
    expect(rerun.allocation!.width_check).toMatchObject({ chosen: 'coarse', cached: true });
    expect(rerun.model.graph!.initializer.map((t) => t.dims)).toEqual(out.model.graph!.initializer.map((t) => t.dims));
  });

  it('keeps the measured widths when the coarse prune ran no faster, with the timing in the record', async () => {
    const first = await measured();
    const out = await checkWidths(first, dense, config, { modelPath: fixture('cnn-bn.onnx'), data, dir: tempDir(), cacheDir: tempDir(), provider: 'cpu', timeModels: timing(false) });
    expect(out.model).toBe(first.model);
    expect(out.allocation!.width_check).toMatchObject({ chosen: 'measured', cached: false });
    expect(out.allocation!.groups!.map((g) => g.multiple)).toEqual([8, 8, 4]);
  });

  it('ships whole blocks when they ran fastest: no group is cut to a halving of its multiple', async () => {
    const fraction = { ...config, sparsity: 0.4 };
    const first0 = await pruneModel(dense, fraction, { modelPath: fixture('cnn-bn.onnx'), widths: new Map() });
    const groups = first0.allocation!.groups!.map((g) => ({ ...g, multiple: 16 }));
    const again = await pruneModel(dense, fraction, { modelPath: fixture('cnn-bn.onnx'), widths: new Map(groups.map((g) => [g.name, 16])) });
    const first = { ...again, allocation: { ...again.allocation!, rounding: 'measured' as const, groups } };
    const convWidths = (m: typeof dense) => m.graph!.initializer.filter((t) => t.dims.length === 4).map((t) => Number(t.dims[0]));
    expect(convWidths(first.model).some((w) => w % 16 !== 0)).toBe(true);
    const time: TimeModels = async (files) => files.map((f) => (path.basename(f).includes('-16-whole') ? [0.5, 5] : [1, 10]));
    const out = await checkWidths(first, dense, fraction, { modelPath: fixture('cnn-bn.onnx'), data, dir: tempDir(), cacheDir: tempDir(), provider: 'cpu', timeModels: time });
    expect(out.allocation!.width_check).toMatchObject({ coarse_multiple: 16, whole_blocks: true, chosen: 'coarse', timed_as: 'float' });
    expect(convWidths(out.model).every((w) => w % 16 === 0)).toBe(true);
    expect(out.description).toMatch(/whole-model timing: whole multiples of 16/);
  });

  it('with quantization after it, times each candidate quantized to INT8 and keys the decision apart from float timing', async () => {
    const first = await measured();
    const calib = loadDataset(firstSamples(fixture('fmnist-calib.npz'), 64), modelInputs(dense, 'cnn-bn.onnx'), { requireLabels: true });
    const shipForm = int8ShipForm(dense, calib, config)!;
    const seen: string[][] = [];
    const time: TimeModels = async (files) => {
      seen.push(files.map((f) => (loadModel(f).proto.graph!.node.some((n) => n.opType === 'QuantizeLinear') ? 'int8' : 'float')));
      return files.map(() => [1, 10]);
    };
    const cache = tempDir();
    const base = { modelPath: fixture('cnn-bn.onnx'), data, cacheDir: cache, provider: 'cpu' as const, timeModels: time };
    const int8 = await checkWidths(first, dense, config, { ...base, dir: tempDir(), shipForm });
    expect(int8.allocation!.width_check).toMatchObject({ timed_as: 'int8', cached: false });
    // the shipped prune itself stays float: quantization is a step of its own after recovery
    expect(int8.model.graph!.node.some((n) => n.opType === 'QuantizeLinear')).toBe(false);
    const float = await checkWidths(await measured(), dense, config, { ...base, dir: tempDir() });
    expect(float.allocation!.width_check).toMatchObject({ timed_as: 'float', cached: false });
    expect(seen.map((s) => [...new Set(s)])).toEqual([['int8'], ['float']]);
  });

  it('never trades the amount pruned for widths: a candidate that removes much less than the measured widths is not timed', async () => {
    const half = { ...config, sparsity: 0.5 };
    const groups = (await pruneModel(dense, half, { modelPath: fixture('cnn-bn.onnx'), widths: new Map() })).allocation!.groups!.map((g) => ({ ...g, multiple: 16 }));
    const again = await pruneModel(dense, half, { modelPath: fixture('cnn-bn.onnx'), widths: new Map(groups.map((g) => [g.name, 16])) });
    const first = { ...again, allocation: { ...again.allocation!, rounding: 'measured' as const, groups } };
    const whole = await pruneModel(dense, half, { modelPath: fixture('cnn-bn.onnx'), widths: new Map(groups.map((g) => [g.name, 16])), wholeBlocks: true });
    expect(whole.channels!.removed).toBeLessThan(MIN_REMOVED_SHARE * first.channels!.removed);
    const timed: string[] = [];
    const time: TimeModels = async (files) => {
      timed.push(...files.map((f) => path.basename(f)));
      return files.map(() => [1, 10]);
    };
    await checkWidths(first, dense, half, { modelPath: fixture('cnn-bn.onnx'), data, dir: tempDir(), cacheDir: tempDir(), provider: 'cpu', timeModels: time });
    expect(timed).not.toContain('width-check-16-whole.onnx');
  });

  it('leaves a prune on fixed or recorded widths alone', async () => {
    const fixed = await pruneModel(dense, { ...config, roundTo: 8 }, { modelPath: fixture('cnn-bn.onnx') });
    const time = timing(true);
    expect(await checkWidths(fixed, dense, config, { modelPath: fixture('cnn-bn.onnx'), data, dir: tempDir(), cacheDir: tempDir(), provider: 'cpu', timeModels: time })).toBe(fixed);
    expect(time.calls).toBe(0);
  });
});
