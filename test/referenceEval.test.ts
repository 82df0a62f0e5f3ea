import * as fs from 'node:fs';
import * as path from 'node:path';
import { toBinary } from '@bufbuild/protobuf';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelProtoSchema } from '../src/onnx/proto/onnx_pb.js';
import { oneOpModel, seededWeights } from './support/buildModel.js';
import { FIXTURES, tempDir } from './support/fixtures.js';
import { referenceEval, referenceFidelity, referenceOutputs, type OutputKind } from './support/referenceEval.js';
import { halfToNumber, numberToHalf, readNpzPlain, type PlainArray } from './support/referenceNpz.js';

const EXPORTS = path.join(FIXTURES, 'exports');
const at = (file: string): string => path.join(EXPORTS, file);

interface Numbers {
  accuracy: number;
  nll: number;
  n: number;
  per_label?: number[];
}
interface Row {
  file: string;
  output_kind?: OutputKind;
  python?: Record<string, Numbers>;
  python_fidelity?: { dense: string; data: string; logits: { cosine: number; rel_l2: number; max_abs: number; top1_agreement: number } };
}
const manifest = JSON.parse(fs.readFileSync(at('manifest.json'), 'utf8')) as { files: Row[] };
const row = (file: string): Row => manifest.files.find((r) => r.file === file)!;

// 0.1 pt, or one sample where a set is too small for 0.1 pt to allow any: fp16 runs may flip a near-tie
const accuracyTolerance = (n: number): number => Math.max(0.001, 1.01 / n);

describe('reference evaluator agrees with the numbers torch/numpy printed for every export fixture', () => {
  const scored = manifest.files.filter((r) => r.python);
  // most fixtures are scored on the same archive: it is read once for them (the reader has tests of its own
  // below) and let go when they are done
  const archives = new Map<string, Map<string, PlainArray>>();
  const archive = (file: string): Map<string, PlainArray> => {
    let arrays = archives.get(file);
    if (!arrays) archives.set(file, (arrays = readNpzPlain(file)));
    return arrays;
  };
  afterAll(() => archives.clear());
  it('covers every classifier fixture the manifest lists', () => {
    expect(scored.map((r) => r.file)).toEqual(expect.arrayContaining(['cnn-opset7.onnx', 'cnn-opset21.onnx', 'cnn-fp16.onnx', 'mlp-fp16.onnx', 'tokens-sigmoid.onnx', 'fmnist-multilabel.onnx', 'vit-fusedqkv.onnx', 'cls1000.onnx']));
  });
  for (const r of scored) {
    for (const [data, want] of Object.entries(r.python!)) {
      it(`${r.file} on ${path.basename(data)}: accuracy within 0.1 pt and NLL within 1%`, async () => {
        const got = await referenceEval(at(r.file), archive(at(data)), { output: r.output_kind! });
        expect(got.n).toBe(want.n);
        expect(Math.abs(got.accuracy - want.accuracy)).toBeLessThanOrEqual(accuracyTolerance(want.n));
        expect(Math.abs(got.nll - want.nll)).toBeLessThanOrEqual(0.01 * want.nll);
        if (want.per_label) {
          expect(got.perLabel).toHaveLength(want.per_label.length);
          got.perLabel!.forEach((acc, k) => expect(Math.abs(acc - want.per_label![k])).toBeLessThanOrEqual(accuracyTolerance(want.n)));
        }
      });
    }
  }
});

describe('reference evaluator on export variants', () => {
  it('runs a fixed-batch-1 model one sample at a time and predicts exactly what the dynamic export does', async () => {
    const fixed = await referenceEval(at('cnn-batch1.onnx'), at('../fmnist-test.npz'), { output: 'logits' });
    const dynamic = await referenceEval(at('cnn-opset13.onnx'), at('../fmnist-test.npz'), { output: 'logits', batch: 300 });
    expect(fixed.batch).toBe(1);
    expect(dynamic.batch).toBe(300); // 2000 is no multiple of 300: the last chunk is short
    expect(fixed.pred).toEqual(dynamic.pred);
    expect(fixed.nll).toBeCloseTo(dynamic.nll, 5);
  });

  it('decodes float16 outputs and casts float32 data to a float16 input (or takes float16 data as stored)', async () => {
    const cast = await referenceEval(at('cnn-fp16.onnx'), at('../fmnist-test.npz'), { output: 'logits' });
    const stored = await referenceEval(at('cnn-fp16.onnx'), at('fmnist-test-fp16.npz'), { output: 'logits' });
    expect(cast.outputType).toBe('float16');
    expect(stored.outputType).toBe('float16');
    // fmnist-test-fp16.npz is every 4th sample of fmnist-test.npz, rounded to float16 as the cast does
    expect(stored.pred).toEqual(cast.pred.filter((_, i) => i % 4 === 0));
  });

  it('scores a [N] and an [N,1] sigmoid head on int64 tokens identically', async () => {
    const column = await referenceEval(at('tokens-sigmoid.onnx'), at('tokens-test.npz'), { output: 'sigmoid' });
    const flat = await referenceEval(at('tokens-sigmoid-flat.onnx'), at('tokens-test.npz'), { output: 'sigmoid' });
    expect(flat).toEqual(column);
    expect(column.perLabel).toHaveLength(1);
  });

  it('reads probabilities behind Flatten, Squeeze or a [N,10,1,1] output as the same predictions', async () => {
    const results = await Promise.all(
      ['sqz-softmax4d.onnx', 'sqz-softmax-flatten.onnx', 'sqz-softmax-squeeze.onnx'].map((f) => referenceEval(at(f), at('../fmnist-calib.npz'), { output: 'probs' })),
    );
    for (const r of results.slice(1)) expect(r.pred).toEqual(results[0].pred);
  });

  it('gives different NLL when told the wrong output kind, so the flag really matters', async () => {
    const right = await referenceEval(at('cnn-logsoftmax.onnx'), at('../fmnist-calib.npz'), { output: 'logprobs' });
    const asLogits = await referenceEval(at('cnn-logsoftmax.onnx'), at('../fmnist-calib.npz'), { output: 'logits' });
    const asProbs = await referenceEval(at('cnn-logsoftmax.onnx'), at('../fmnist-calib.npz'), { output: 'probs' });
    expect(asLogits.nll).toBeCloseTo(right.nll, 4); // log-softmax of log-probabilities is the identity
    expect(asProbs.nll).toBeGreaterThan(10 * right.nll);
  });
});

describe('reference fidelity', () => {
  function writeGemm(dir: string, name: string, scale: number): string {
    const w = seededWeights(12, 3).map((v) => v * scale);
    const model = oneOpModel({ opType: 'Gemm', x: ['N', 4], weight: { dims: [3, 4], values: w }, y: ['N', 3], ints: { transB: 1 } });
    const file = path.join(dir, name);
    fs.writeFileSync(file, toBinary(ModelProtoSchema, model));
    return file;
  }
  const x: PlainArray = { shape: [50, 4], integer: false, values: Float64Array.from(seededWeights(200, 9)) };
  const data = new Map([['x', x]]);

  it('matches the closed form for y -> 2y (cosine 1, relative error 1) and y -> -y (cosine -1, error 2, no top-1 agreement)', async () => {
    const dir = tempDir();
    const dense = writeGemm(dir, 'dense.onnx', 1);
    const y = (await referenceOutputs(dense, data)).byName.get('y')!.values;
    const maxAbsY = Math.max(...Array.from(y, Math.abs));
    const doubled = (await referenceFidelity(dense, writeGemm(dir, 'double.onnx', 2), data, { classLike: ['y'] })).get('y')!;
    expect(doubled.cosine).toBeCloseTo(1, 6);
    expect(doubled.relL2).toBeCloseTo(1, 6);
    expect(doubled.maxAbs).toBeCloseTo(maxAbsY, 5);
    expect(doubled.top1Agreement).toBe(1);
    const negated = (await referenceFidelity(dense, writeGemm(dir, 'neg.onnx', -1), data, { classLike: ['y'] })).get('y')!;
    expect(negated.cosine).toBeCloseTo(-1, 6);
    expect(negated.relL2).toBeCloseTo(2, 6);
    expect(negated.maxAbs).toBeCloseTo(2 * maxAbsY, 5);
    expect(negated.top1Agreement).toBe(0);
    fs.rmSync(dir, { recursive: true });
  });

  it('reports every output of a two-output detector, top-1 agreement only where asked', async () => {
    const same = await referenceFidelity(at('detector.onnx'), at('detector.onnx'), at('fmnist-unlabelled.npz'), { classLike: ['scores'] });
    expect([...same.keys()]).toEqual(['boxes', 'scores']);
    expect(same.get('boxes')).toEqual({ cosine: 1, relL2: 0, maxAbs: 0 });
    expect(same.get('scores')).toEqual({ cosine: 1, relL2: 0, maxAbs: 0, top1Agreement: 1 });
  });

  it('finds the Einsum and fused-QKV attention exports equal to fixtures/vit.onnx', async () => {
    for (const file of ['vit-einsum.onnx', 'vit-fusedqkv.onnx']) {
      const f = (await referenceFidelity(at('../vit.onnx'), at(file), at('../fmnist-calib.npz'), { classLike: ['logits'] })).get('logits')!;
      expect(f.cosine).toBeGreaterThan(1 - 1e-9);
      expect(f.relL2).toBeLessThan(1e-5);
      expect(f.top1Agreement).toBe(1);
    }
  });

  for (const file of ['cnn-fp16.onnx', 'mlp-fp16.onnx']) {
    it(`measures ${file} against its float32 model as numpy's fp16 emulation does`, async () => {
      const want = row(file).python_fidelity!;
      const got = (await referenceFidelity(at(want.dense), at(file), at(want.data), { classLike: ['logits'] })).get('logits')!;
      expect(Math.abs(got.cosine - want.logits.cosine)).toBeLessThan(1e-4);
      expect(Math.abs(got.top1Agreement! - want.logits.top1_agreement)).toBeLessThanOrEqual(0.0025);
      // onnxruntime rounds at other points than the emulation: same order of magnitude, not the same digits
      expect(got.relL2).toBeGreaterThan(want.logits.rel_l2 / 3);
      expect(got.relL2).toBeLessThan(want.logits.rel_l2 * 3);
    });
  }
});

describe('reference npz reader and float16 codec', () => {
  it('reads float32 images, int64 labels and float16 arrays', () => {
    const test = readNpzPlain(at('../fmnist-test.npz'));
    expect(test.get('x')!.shape).toEqual([2000, 1, 28, 28]);
    expect(test.get('y')!.integer).toBe(true);
    expect(new Set(test.get('y')!.values)).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    const half = readNpzPlain(at('fmnist-test-fp16.npz')).get('x')!;
    const full = test.get('x')!;
    for (let i = 0; i < 784; i++) expect(half.values[i]).toBe(halfToNumber(numberToHalf(full.values[i])));
  });

  it('round-trips every finite float16 and rounds to nearest even', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = halfToNumber(bits);
      if (Number.isNaN(v)) continue;
      if (numberToHalf(v) !== bits) throw new Error(`0x${bits.toString(16)} -> ${v} -> 0x${numberToHalf(v).toString(16)}`);
    }
    expect(numberToHalf(1 / 3)).toBe(0x3555);
    expect(numberToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie, even mantissa kept
    expect(numberToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, rounded up to even
    expect(numberToHalf(65520)).toBe(0x7c00); // past the largest half: infinity
    expect(numberToHalf(2 ** -25 + 2 ** -30)).toBe(0x0001); // just over half the smallest subnormal
  });
});
