import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { loadModel, saveModel, serializeModel, setMetadata, getMetadata } from '../../src/onnx/model.js';
import { UserError } from '../../src/errors.js';
import { fixture, present, realWorld, tempDir } from '../support/fixtures.js';
import { externalDataModel } from '../hardening/badModels.js';

const MODELS = [...['mlp.onnx', 'cnn-bn.onnx', 'resnet.onnx'].map(fixture), realWorld('model.onnx')];

async function run(file: string | Uint8Array, x: Float32Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file as string);
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [2, 1, 28, 28]) });
  await s.release();
  return out[s.outputNames[0]].data as Float32Array;
}

describe('model load and save', () => {
  it.each(MODELS)('round-trips %s byte for byte', (file) => {
    const original = fs.readFileSync(present(file));
    const { proto } = loadModel(file);
    expect(Buffer.from(serializeModel(proto)).equals(original)).toBe(true);
  });

  it.each(MODELS)('saved copy of %s gives the same outputs in onnxruntime', async (file) => {
    const dir = tempDir();
    const out = path.join(dir, 'copy.onnx');
    saveModel(loadModel(present(file)).proto, out);
    const x = Float32Array.from({ length: 2 * 784 }, (_, i) => Math.sin(i));
    expect(Array.from(await run(out, x))).toEqual(Array.from(await run(file, x)));
  });

  it('keeps fields it does not know (unknown protobuf fields survive a round trip)', () => {
    // field 999, varint 7: not in onnx.proto
    const withUnknown = new Uint8Array([...loadModelBytes(), 0xb8, 0x3e, 0x07]);
    const dir = tempDir();
    const file = path.join(dir, 'm.onnx');
    fs.writeFileSync(file, withUnknown);
    expect(Buffer.from(serializeModel(loadModel(file).proto)).equals(Buffer.from(withUnknown))).toBe(true);
  });

  it('records provenance in metadata_props', () => {
    const { proto } = loadModel(MODELS[0]);
    setMetadata(proto, { 'prune-guard.method': 'unstructured' });
    setMetadata(proto, { 'prune-guard.method': 'structured' });
    expect(getMetadata(proto, 'prune-guard.method')).toBe('structured');
    expect(proto.metadataProps.filter((e) => e.key === 'prune-guard.method')).toHaveLength(1);
  });
});

function loadModelBytes(): Uint8Array {
  return fs.readFileSync(MODELS[0]);
}

describe('bad model files', () => {
  const dir = tempDir();
  const write = (name: string, bytes: Uint8Array | string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, bytes);
    return f;
  };

  it('a truncated file is a one-line user error naming the file', () => {
    const bytes = fs.readFileSync(MODELS[0]);
    for (const cut of [10, 1000, Math.floor(bytes.length / 2), bytes.length - 3]) {
      const f = write(`cut${cut}.onnx`, bytes.subarray(0, cut));
      expect(() => loadModel(f)).toThrow(UserError);
      try {
        loadModel(f);
      } catch (e) {
        expect((e as Error).message).toContain(f);
        expect((e as Error).message).not.toContain('\n');
      }
    }
  });

  it('a text file is not a model', () => {
    expect(() => loadModel(write('notes.onnx', 'hello world, not a model\n'))).toThrow(/not a valid ONNX model/);
  });

  it('an empty file and a missing file are user errors', () => {
    expect(() => loadModel(write('empty.onnx', ''))).toThrow(/empty file/);
    expect(() => loadModel(path.join(dir, 'nope.onnx'))).toThrow(/file not found/);
  });
});

describe('external data', () => {
  /** The MLP with its weights in a data file at `location`; an absolute location is never written. */
  const externalize = (dir: string, location = 'weights.bin'): string =>
    externalDataModel(dir, location, { write: !path.isAbsolute(location) });

  it('reads tensors stored beside the model and gives the same outputs', async () => {
    const dir = tempDir();
    const file = externalize(dir);
    expect(fs.statSync(file).size).toBeLessThan(10_000);
    const inlined = path.join(dir, 'inlined.onnx');
    saveModel(loadModel(file).proto, inlined);
    const x = Float32Array.from({ length: 2 * 784 }, (_, i) => Math.cos(i));
    expect(Array.from(await run(inlined, x))).toEqual(Array.from(await run(MODELS[0], x)));
  });

  it('refuses external data that escapes the model folder or is missing', () => {
    const dir = tempDir();
    const sub = path.join(dir, 'model');
    fs.mkdirSync(sub);
    expect(() => loadModel(externalize(sub, '../weights.bin'))).toThrow(/escapes the model's folder/);
    fs.symlinkSync(path.join(dir, 'weights.bin'), path.join(sub, 'link.bin'));
    expect(() => loadModel(externalize(sub, 'link.bin'))).toThrow(/escapes the model's folder/);
    expect(() => loadModel(externalize(dir, '/etc/passwd'))).toThrow(/is absolute/);
    const file = externalize(dir);
    fs.rmSync(path.join(dir, 'weights.bin'));
    expect(() => loadModel(file)).toThrow(/external data file 'weights.bin' .* not found/);
  });

  it('refuses external data shorter than the tensor asks for', () => {
    const dir = tempDir();
    const file = externalize(dir);
    fs.truncateSync(path.join(dir, 'weights.bin'), 100);
    expect(() => loadModel(file)).toThrow(/truncated/);
  });
});
