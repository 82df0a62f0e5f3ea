import * as fs from 'node:fs';
import * as path from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { loadModel, saveModel, setMetadata } from '../../src/onnx/model.js';
import { modelChunks, varint } from '../../src/onnx/streamSave.js';
import { ModelProtoSchema, TensorProtoSchema, type ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { FIXTURES, present, realWorld, tempDir } from '../support/fixtures.js';
import { oneOpModel, seededWeights } from '../support/buildModel.js';
import { onnxCheck } from '../support/onnxChecker.js';

const FIXTURE_MODELS = [
  ...fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.onnx')).map((f) => path.join(FIXTURES, f)),
  ...fs.readdirSync(path.join(FIXTURES, 'structured')).filter((f) => f.endsWith('.onnx')).map((f) => path.join(FIXTURES, 'structured', f)),
];
FIXTURE_MODELS.push(realWorld('model.onnx'));

function concat(chunks: Iterable<Uint8Array>): Buffer {
  return Buffer.concat([...chunks].map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

/** Gemm with an 8 MB raw weight (4-byte length varints), a float_data bias, metadata and a graph doc string. */
function bigModel(): ModelProto {
  const model = oneOpModel({ opType: 'Gemm', x: ['N', 2048], weight: { dims: [1024, 2048], values: seededWeights(1024 * 2048) }, y: ['N', 1024], ints: { transB: 1 } });
  const g = model.graph!;
  g.initializer.push(create(TensorProtoSchema, { name: 'B', dataType: 1, dims: [1024n], floatData: Array.from(seededWeights(1024, 7)) }));
  g.node[0]!.input.push('B');
  g.docString = 'written after the initializers';
  setMetadata(model, { 'prune-guard.test': 'stream' });
  return model;
}

describe('streaming save', () => {
  it('encodes varints like protobuf', () => {
    expect([...varint(0)]).toEqual([0]);
    expect([...varint(127)]).toEqual([127]);
    expect([...varint(128)]).toEqual([0x80, 1]);
    expect([...varint(8 * 2 ** 20)]).toEqual([0x80, 0x80, 0x80, 0x04]);
    expect([...varint(2 ** 31 - 1)]).toEqual([0xff, 0xff, 0xff, 0xff, 0x07]);
  });

  it.each(FIXTURE_MODELS)('%s: chunks are byte-identical to toBinary, streaming every raw tensor', (file) => {
    const { proto } = loadModel(present(file));
    const whole = toBinary(ModelProtoSchema, proto);
    const chunked = modelChunks(proto, 1);
    expect(chunked.bytes).toBe(whole.byteLength);
    expect(concat(chunked.chunks()).equals(Buffer.from(whole))).toBe(true);
    // and with the default threshold, as saveModel writes it
    const dir = tempDir();
    const out = path.join(dir, 'm.onnx');
    expect(saveModel(proto, out)).toBe(whole.byteLength);
    expect(fs.readFileSync(out).equals(Buffer.from(whole))).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['m.onnx']);
  });

  it('a hand-built model with big raw tensors: identical bytes, proto untouched, valid, runs', async () => {
    const model = bigModel();
    const whole = Buffer.from(toBinary(ModelProtoSchema, model));
    const weight = model.graph!.initializer[0]!.rawData;
    const dir = tempDir();
    const out = path.join(dir, 'big.onnx');
    expect(saveModel(model, out)).toBe(whole.byteLength);
    const written = fs.readFileSync(out);
    expect(written.equals(whole)).toBe(true);
    // the big raw data went out as the tensor's own array, and the proto is as it was
    const chunks = [...modelChunks(model).chunks()];
    expect(chunks.some((c) => c === weight)).toBe(true);
    expect(model.graph!.initializer[0]!.rawData).toBe(weight);
    expect(Buffer.from(toBinary(ModelProtoSchema, model)).equals(whole)).toBe(true);
    onnxCheck(out);
    const s = await ort.InferenceSession.create(out);
    const y = await s.run({ x: new ort.Tensor('float32', seededWeights(2048, 3), [1, 2048]) });
    expect((y.y!.data as Float32Array).length).toBe(1024);
    await s.release();
  });

  it('a model without initializers', () => {
    const model = bigModel();
    model.graph!.initializer = [];
    expect(concat(modelChunks(model, 1).chunks()).equals(Buffer.from(toBinary(ModelProtoSchema, model)))).toBe(true);
  });

  it('keeps unknown fields where toBinary puts them', () => {
    const model = bigModel();
    // an unknown field (number 99, varint) on the model, the graph and the big tensor
    const unknown = { no: 99, wireType: 0, data: new Uint8Array([0xf8, 0x06, 0x2a]) };
    for (const m of [model, model.graph!, model.graph!.initializer[0]!] as { $unknown?: unknown[] }[]) m.$unknown = [unknown];
    const whole = Buffer.from(toBinary(ModelProtoSchema, model));
    expect(concat(modelChunks(model, 1).chunks()).equals(whole)).toBe(true);
  });
});
