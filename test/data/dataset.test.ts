import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { describeDims, loadDataset, sliceBatch, takeSamples, type ModelInputSpec } from '../../src/data/dataset.js';
import { encodeNpy, type NdArray } from '../../src/data/npy.js';
import { writeNpz } from '../../src/data/npz.js';
import { tempDir, userErrorOf } from './helpers.js';

const dir = tempDir();
let seq = 0;

/** Writes an .npz of the given arrays and returns its path. */
function npz(arrays: Record<string, NdArray>): string {
  const file = join(dir, `ds-${seq++}.npz`);
  writeNpz(file, arrays);
  return file;
}

const f32 = (shape: number[], fill = (i: number) => i): NdArray => {
  const n = shape.reduce((a, d) => a * d, 1);
  return { dtype: 'float32', shape, data: Float32Array.from({ length: n }, (_, i) => fill(i)) };
};
const i64 = (vals: number[]): NdArray => ({ dtype: 'int64', shape: [vals.length], data: BigInt64Array.from(vals.map(BigInt)) });

const IMAGE: ModelInputSpec = { name: 'input', dtype: 'float32', dims: ['batch', 1, 28, 28] };
const SMALL: ModelInputSpec = { name: 'input', dtype: 'float32', dims: ['batch', 2, 2] };

describe('describeDims', () => {
  it('prints fixed, symbolic and unknown dims compactly', () => {
    expect(describeDims(['batch', 1, 28, 28])).toBe('[batch,1,28,28]');
    expect(describeDims([null, 3])).toBe('[?,3]');
    expect(describeDims([])).toBe('[]');
  });
});

describe('loadDataset: mapping arrays to model inputs', () => {
  it('feeds x to a single-input model and casts int64 labels y to Int32Array', () => {
    const file = npz({ x: f32([3, 2, 2]), y: i64([2, 0, 9]) });
    const ds = loadDataset(file, [SMALL], { requireLabels: true });
    expect(ds.path).toBe(file);
    expect(ds.count).toBe(3);
    expect([...ds.inputs.keys()]).toEqual(['input']);
    expect(ds.inputs.get('input')!.dims).toEqual([3, 2, 2]);
    expect(ds.labels).toBeInstanceOf(Int32Array);
    expect(Array.from(ds.labels!)).toEqual([2, 0, 9]);
  });

  it('prefers an array named like the single input over x, and ignores unknown extra arrays', () => {
    const file = npz({ x: f32([1, 2, 2], () => 1), input: f32([2, 2, 2], () => 7), extra: i64([1, 2, 3]) });
    const ds = loadDataset(file, [SMALL], { requireLabels: false });
    expect(ds.count).toBe(2);
    expect((ds.inputs.get('input')!.data as Float32Array)[0]).toBe(7);
    expect(ds.labels).toBeNull();
  });

  it('accepts any size on symbolic and unknown dims, and any sample count for a fixed batch dim', () => {
    const file = npz({ x: f32([5, 3, 7]) });
    expect(loadDataset(file, [{ name: 'a', dtype: 'float32', dims: [null, 'seq', 7] }], { requireLabels: false }).count).toBe(5);
    // exported with batch 1: the data file's first axis is still the sample axis
    expect(loadDataset(file, [{ name: 'a', dtype: 'float32', dims: [1, 3, 7] }], { requireLabels: false }).count).toBe(5);
  });

  it('reads a bare .npy file as x (without labels)', () => {
    const file = join(dir, 'inputs.npy');
    writeFileSync(file, encodeNpy(f32([4, 2, 2])));
    const ds = loadDataset(file, [SMALL], { requireLabels: false });
    expect(ds.count).toBe(4);
    expect(ds.labels).toBeNull();
    expect(userErrorOf(() => loadDataset(file, [SMALL], { requireLabels: true }))).toBe(
      `${file}: no label array 'y'; add y=labels (integer class ids) to the .npz`,
    );
  });

  it('binds one array per input name for a multi-input model, ignoring x', () => {
    const file = npz({
      ids: { dtype: 'int64', shape: [2, 4], data: new BigInt64Array(8).fill(3n) },
      mask: { dtype: 'bool', shape: [2, 4], data: new Uint8Array(8).fill(1) },
      x: f32([9, 9]),
      y: i64([0, 1]),
    });
    const model: ModelInputSpec[] = [
      { name: 'ids', dtype: 'int64', dims: ['batch', 'seq'] },
      { name: 'mask', dtype: 'bool', dims: ['batch', 'seq'] },
    ];
    const ds = loadDataset(file, model, { requireLabels: true });
    expect([...ds.inputs.keys()]).toEqual(['ids', 'mask']);
    expect(ds.inputs.get('ids')!.dtype).toBe('int64');
    expect(ds.inputs.get('mask')!.dims).toEqual([2, 4]);
    expect(ds.count).toBe(2);
  });

  it('lists every missing input of a multi-input model and shows the np.savez call to make', () => {
    const file = npz({ x: f32([2, 4]), ids: i64([1, 2]) });
    const model: ModelInputSpec[] = [
      { name: 'ids', dtype: 'int64', dims: ['batch'] },
      { name: 'mask', dtype: 'bool', dims: ['batch'] },
      { name: 'pos', dtype: 'int64', dims: ['batch'] },
    ];
    const msg = userErrorOf(() => loadDataset(file, model, { requireLabels: false }));
    expect(msg).toContain(`${file}: no array for model inputs 'mask', 'pos'`);
    expect(msg).toContain('np.savez(path, ids=..., mask=..., pos=..., y=labels)');
  });

  it('says which array to add when a single-input model finds neither x nor its input name', () => {
    const file = npz({ images: f32([2, 2, 2]), y: i64([0, 1]) });
    const msg = userErrorOf(() => loadDataset(file, [SMALL], { requireLabels: true }));
    expect(msg).toContain(`${file}: no array 'x' for model input 'input' (found: 'images', 'y')`);
    expect(msg).toContain('np.savez(path, x=inputs, y=labels)');
  });
});

describe('loadDataset: validation', () => {
  it('rejects a wrong dtype with the astype fix', () => {
    const file = npz({ x: { dtype: 'float64', shape: [1, 2, 2], data: new Float64Array(4) }, y: i64([0]) });
    expect(userErrorOf(() => loadDataset(file, [SMALL], { requireLabels: true }))).toBe(
      `${file}: array 'x' has dtype float64 but model input 'input' expects float32; save it with x.astype(np.float32)`,
    );
  });

  it('rejects a wrong rank, suggesting the exact reshape when the sample size fits', () => {
    const file = npz({ x: f32([3, 784]), y: i64([0, 1, 2]) });
    expect(userErrorOf(() => loadDataset(file, [IMAGE], { requireLabels: true }))).toBe(
      `${file}: array 'x' has shape [3,784] but model input 'input' expects [batch,1,28,28] (rank 2 vs 4); save it with x.reshape(-1, 1, 28, 28)`,
    );
    const other = npz({ x: f32([3, 10]) });
    expect(userErrorOf(() => loadDataset(other, [IMAGE], { requireLabels: false }))).toContain(
      '(rank 2 vs 4); save it with shape [N,1,28,28]',
    );
  });

  it('rejects a wrong fixed dim, naming the axis with got vs expected', () => {
    const file = npz({ x: f32([2, 1, 32, 32]), y: i64([0, 1]) });
    const msg = userErrorOf(() => loadDataset(file, [IMAGE], { requireLabels: true }));
    expect(msg).toContain(
      `${file}: array 'x' has shape [2,1,32,32] but model input 'input' expects [batch,1,28,28] (axis 2: 32 vs 28)`,
    );
  });

  it('rejects a missing y when labels are required, with the exact fix', () => {
    const file = npz({ x: f32([2, 2, 2]) });
    expect(userErrorOf(() => loadDataset(file, [SMALL], { requireLabels: true }))).toBe(
      `${file}: no label array 'y'; add y=labels (integer class ids) to the .npz`,
    );
    expect(loadDataset(file, [SMALL], { requireLabels: false }).labels).toBeNull();
  });

  it('rejects labels that are floats, one-hot, negative or the wrong length', () => {
    const x = f32([3, 2, 2]);
    const cases: [NdArray, string][] = [
      [f32([3]), "label array 'y' has dtype float32 but labels must be integer class ids; save it with y.astype(np.int64)"],
      [f32([3, 2]), "label array 'y' has shape [3,2] but labels must be 1-D class ids; for one-hot labels save y.argmax(axis=1)"],
      [i64([0, -1, 2]), "label array 'y' has negative value -1 at index 1"],
      [i64([0, 1]), "label array 'y' holds 2 labels but the inputs hold 3 samples"],
      [{ dtype: 'uint64', shape: [3], data: new BigUint64Array([0n, 2n ** 40n, 1n]) }, "label array 'y' has out-of-range value 1099511627776 at index 1"],
    ];
    for (const [y, fragment] of cases) {
      const file = npz({ x, y });
      // a present y is validated even when labels are optional: silently dropping it would hide the mistake
      for (const requireLabels of [true, false]) {
        expect(userErrorOf(() => loadDataset(file, [SMALL], { requireLabels }))).toContain(`${file}: ${fragment}`);
      }
    }
  });

  it('accepts labels of every integer dtype', () => {
    const x = f32([2, 2, 2]);
    const ys: NdArray[] = [
      { dtype: 'uint8', shape: [2], data: new Uint8Array([1, 2]) },
      { dtype: 'int8', shape: [2], data: new Int8Array([1, 2]) },
      { dtype: 'int16', shape: [2], data: new Int16Array([1, 2]) },
      { dtype: 'uint16', shape: [2], data: new Uint16Array([1, 2]) },
      { dtype: 'int32', shape: [2], data: new Int32Array([1, 2]) },
      { dtype: 'uint32', shape: [2], data: new Uint32Array([1, 2]) },
      { dtype: 'uint64', shape: [2], data: new BigUint64Array([1n, 2n]) },
    ];
    for (const y of ys) expect(Array.from(loadDataset(npz({ x, y }), [SMALL], { requireLabels: true }).labels!)).toEqual([1, 2]);
  });

  it('rejects inputs whose sample counts disagree', () => {
    const file = npz({ a: f32([3, 2]), b: f32([2, 2]) });
    const model: ModelInputSpec[] = [
      { name: 'a', dtype: 'float32', dims: ['batch', 2] },
      { name: 'b', dtype: 'float32', dims: ['batch', 2] },
    ];
    expect(userErrorOf(() => loadDataset(file, model, { requireLabels: false }))).toBe(
      `${file}: arrays disagree on the number of samples: 'a' has 3 but 'b' has 2; every input array needs the same first dimension`,
    );
  });

  it('rejects an empty data set', () => {
    const file = npz({ x: f32([0, 2, 2]), y: i64([]) });
    expect(userErrorOf(() => loadDataset(file, [SMALL], { requireLabels: true }))).toContain(
      `${file}: array 'x' for model input 'input' holds 0 samples`,
    );
  });

  it('names the model file when the model itself cannot be fed', () => {
    const file = npz({ x: f32([2]) });
    expect(userErrorOf(() => loadDataset(file, [], { requireLabels: false, modelPath: 'm.onnx' }))).toMatch(/^m\.onnx: declares no graph inputs/);
    expect(
      userErrorOf(() => loadDataset(file, [{ name: 's', dtype: 'float32', dims: [] }], { requireLabels: false, modelPath: 'm.onnx' })),
    ).toMatch(/^m\.onnx: input 's' is a scalar/);
  });

  it('passes file-level errors through (missing file)', () => {
    const file = join(dir, 'missing.npz');
    expect(userErrorOf(() => loadDataset(file, [SMALL], { requireLabels: false }))).toBe(`${file}: file not found; pass the path of a .npz or .npy file`);
  });
});

describe('sliceBatch and takeSamples', () => {
  const file = npz({
    a: f32([4, 2], (i) => i),
    b: { dtype: 'int64', shape: [4, 3], data: BigInt64Array.from({ length: 12 }, (_, i) => BigInt(i)) },
    y: i64([10, 11, 12, 13]),
  });
  const model: ModelInputSpec[] = [
    { name: 'a', dtype: 'float32', dims: ['n', 2] },
    { name: 'b', dtype: 'int64', dims: ['n', 3] },
  ];
  const ds = loadDataset(file, model, { requireLabels: true });

  it('slices a batch as views sharing memory with the data set', () => {
    const batch = sliceBatch(ds, 1, 3);
    const a = batch.get('a')!;
    expect(a.dims).toEqual([2, 2]);
    expect(Array.from(a.data as Float32Array)).toEqual([2, 3, 4, 5]);
    expect(a.data.buffer).toBe(ds.inputs.get('a')!.data.buffer);
    expect(Array.from(batch.get('b')!.data as BigInt64Array)).toEqual([3n, 4n, 5n, 6n, 7n, 8n]);
    expect(sliceBatch(ds, 3, 4).get('a')!.dims).toEqual([1, 2]);
  });

  it('refuses empty or out-of-range batches as programming errors', () => {
    for (const [s, e] of [[2, 2], [-1, 1], [0, 5], [1.5, 2]]) {
      expect(() => sliceBatch(ds, s, e)).toThrow(RangeError);
    }
  });

  it('copies a reordered, repeating subset with its labels', () => {
    const sub = takeSamples(ds, [3, 0, 3]);
    expect(sub.count).toBe(3);
    expect(sub.path).toBe(file);
    expect(sub.inputs.get('a')!.dims).toEqual([3, 2]);
    expect(Array.from(sub.inputs.get('a')!.data as Float32Array)).toEqual([6, 7, 0, 1, 6, 7]);
    expect(Array.from(sub.inputs.get('b')!.data as BigInt64Array)).toEqual([9n, 10n, 11n, 0n, 1n, 2n, 9n, 10n, 11n]);
    expect(Array.from(sub.labels!)).toEqual([13, 10, 13]);
    (sub.inputs.get('a')!.data as Float32Array)[0] = -1;
    expect((ds.inputs.get('a')!.data as Float32Array)[6]).toBe(6);
  });

  it('takes samples from a typed-array index list and from a batch view', () => {
    const sub = takeSamples(ds, Uint32Array.of(2));
    expect(Array.from(sub.inputs.get('a')!.data as Float32Array)).toEqual([4, 5]);
    const viewDs = { ...ds, count: 2, inputs: sliceBatch(ds, 2, 4), labels: ds.labels!.subarray(2, 4) };
    expect(Array.from(takeSamples(viewDs, [1]).inputs.get('a')!.data as Float32Array)).toEqual([6, 7]);
  });

  it('refuses empty and out-of-range index lists as programming errors', () => {
    expect(() => takeSamples(ds, [])).toThrow(RangeError);
    expect(() => takeSamples(ds, [4])).toThrow(RangeError);
    expect(() => takeSamples(ds, [0.5])).toThrow(RangeError);
  });
});

const FMNIST = fileURLToPath(new URL('../../fixtures/fmnist-test.npz', import.meta.url));

describe('Fashion-MNIST fixture', () => {
  it('loads fixtures/fmnist-test.npz against a [batch,1,28,28] float32 input', () => {
    const ds = loadDataset(FMNIST, [IMAGE], { requireLabels: true });
    expect(ds.count).toBeGreaterThan(0);
    const x = ds.inputs.get('input')!;
    expect(x.dtype).toBe('float32');
    expect(x.dims).toEqual([ds.count, 1, 28, 28]);
    expect(x.data.length).toBe(ds.count * 784);
    expect(ds.labels!.length).toBe(ds.count);
    expect(Math.min(...ds.labels!)).toBe(0);
    expect(Math.max(...ds.labels!)).toBe(9);
    // normalized pixels: finite, centred near 0
    const data = x.data as Float32Array;
    let sum = 0;
    for (let i = 0; i < data.length; i++) sum += data[i];
    expect(Number.isFinite(sum)).toBe(true);
    expect(Math.abs(sum / data.length)).toBeLessThan(0.5);
  });
});
