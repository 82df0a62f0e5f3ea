/**
 * Every hostile or broken input ends in one clear line on stderr and exit 2, with nothing written:
 * the --out folder does not even exist afterwards.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, parseModel } from '../../src/onnx/model.js';
import { isUserError } from '../../src/errors.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { runCli } from '../support/cli.js';
import { writeNpz } from '../../src/data/npz.js';
import { inputHashes } from '../support/outputSet.js';
import { dataSet, deeplyNestedBytes, externalDataModel, hugeExternalModel, mlp, MLP, nestedSubgraphModel, withWeightValue, writeModel } from './badModels.js';

const dir = tempDir('prune-guard-hostile-');
const DATA = fixture('fmnist-test.npz');
const FAST = ['--runs', '2', '--warmup', '0', '--batch-sizes', '1'];
let outs = 0;

async function expectRefused(args: string[], pattern: RegExp): Promise<void> {
  const out = path.join(dir, `out-${++outs}`);
  const before = inputHashes(args);
  const r = await runCli(['run', '--out', out, ...FAST, ...args]);
  expect(inputHashes(args), 'inputs are never written').toEqual(before);
  const errors = r.stderr.split('\n').filter((l) => /^(prune-guard: )?error:/.test(l));
  expect(r.stderr, r.stderr).not.toMatch(/\n\s+at |internal error/);
  expect(errors, r.stderr).toHaveLength(1);
  expect(errors[0]).toMatch(pattern);
  expect(r.code).toBe(2);
  expect(fs.existsSync(out), 'nothing may be written for a refused run').toBe(false);
}

const onMlp = (model: string, ...rest: string[]) => ['--model', model, '--data', DATA, ...rest];
const onData = (data: string, ...rest: string[]) => ['--model', MLP, '--data', data, ...rest];
const file = (name: string) => path.join(dir, name);

describe('broken and hostile model files', () => {
  it('random bytes', async () => {
    fs.writeFileSync(file('random.onnx'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)));
    await expectRefused(onMlp(file('random.onnx')), /random\.onnx: not a valid ONNX model .*re-export/);
  });

  it('two nodes writing one tensor: refused naming the tensor', async () => {
    const m = mlp();
    // a second Relu writing the first one's output
    m.graph!.node.splice(3, 0, { ...m.graph!.node[2], name: '/net/extra/Relu' });
    await expectRefused(onMlp(writeModel(file('two-producers.onnx'), m)), /two-producers\.onnx: tensor '\/net\/net\.2\/Relu_output_0' has two producers/);
  });

  it('a FIFO as the model: refused at once instead of blocking', async () => {
    const fifo = file('pipe.onnx');
    execFileSync('mkfifo', [fifo]);
    await expectRefused(onMlp(fifo), /pipe\.onnx: is a named pipe \(FIFO\), not a regular file/);
  });

  it('--out under /proc: refused in one line instead of spinning', async () => {
    const r = await runCli(['run', '--out', '/proc/x', ...FAST, ...onMlp(MLP)]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim()).toBe('prune-guard: error: --out /proc/x: is on a system file system (/proc, /sys or /dev); pass a folder path for the outputs');
  });

  it('/dev/zero as the model and /proc as the data: refused before a byte is read', async () => {
    await expectRefused(onMlp('/dev/zero'), /^(prune-guard: )?error: \/dev\/zero: is a system file/);
    fs.symlinkSync('/proc/self/status', file('status.npz'));
    await expectRefused(onData(file('status.npz')), /status\.npz: is a system file/);
  });

  it('a model cut off half-way', async () => {
    const bytes = fs.readFileSync(MLP);
    fs.writeFileSync(file('half.onnx'), bytes.subarray(0, bytes.length >> 1));
    await expectRefused(onMlp(file('half.onnx')), /half\.onnx: .*(truncated|not a valid ONNX)/);
  });

  it('a protobuf bomb: a length field claiming a terabyte', async () => {
    // field 7 (graph), length 2^40, then three bytes
    fs.writeFileSync(file('bomb.onnx'), Buffer.from([0x3a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 1, 2, 3]));
    await expectRefused(onMlp(file('bomb.onnx')), /bomb\.onnx: not a valid ONNX model/);
  });

  it('a protobuf bomb: subgraph attributes nested 100000 deep', async () => {
    fs.writeFileSync(file('deep.onnx'), deeplyNestedBytes(100_000));
    await expectRefused(onMlp(file('deep.onnx')), /deep\.onnx: not a valid ONNX model/);
  });

  it('a readable model whose subgraphs nest absurdly deep', async () => {
    await expectRefused(onMlp(nestedSubgraphModel(file('nested.onnx'), 20)), /nested\.onnx: subgraphs nest more than 16 levels/);
  });

  it('an opset newer than onnxruntime supports', async () => {
    const m = mlp();
    m.opsetImport[0].version = 99n;
    await expectRefused(onMlp(writeModel(file('opset99.onnx'), m)), /opset99\.onnx: uses opset 99 of ai\.onnx, newer than onnxruntime-node 1\.30 supports \(up to 26\)/);
  });

  it('a custom-domain op, reported by name and domain', async () => {
    const m = mlp();
    const relu = m.graph!.node.find((n) => n.opType === 'Relu')!;
    relu.opType = 'FancyAct';
    relu.domain = 'com.acme';
    m.opsetImport.push({ ...m.opsetImport[0], domain: 'com.acme', version: 1n });
    await expectRefused(onMlp(writeModel(file('custom.onnx'), m)), /custom\.onnx: uses custom op 'FancyAct' from domain 'com\.acme'/);
  });

  it('an op onnxruntime does not know, reported by name', async () => {
    const m = mlp();
    m.graph!.node.find((n) => n.opType === 'Relu')!.opType = 'Frobnicate';
    await expectRefused(onMlp(writeModel(file('unknown-op.onnx'), m)), /unknown-op\.onnx: onnxruntime cannot load the model: op 'Frobnicate' is not an operator/);
  });

  it('NaN in a weight', async () => {
    await expectRefused(onMlp(withWeightValue(file('nan.onnx'), NaN)), /nan\.onnx: initializer '.+' holds NaN at flat index 3/);
  });

  it('Inf in a weight', async () => {
    await expectRefused(onMlp(withWeightValue(file('inf.onnx'), -Infinity)), /inf\.onnx: weight '.+' holds -Inf at flat index 3/);
  });
});

describe('external data', () => {
  it('a missing external data file', async () => {
    const d = fs.mkdtempSync(file('ext-missing-'));
    await expectRefused(onMlp(externalDataModel(d, 'weights.bin', { write: false })), /ext\.onnx: external data file 'weights\.bin' .* not found/);
  });

  it('a location escaping the model folder with ../', async () => {
    const d = fs.mkdtempSync(file('ext-up-'));
    fs.mkdirSync(path.join(d, 'm'));
    await expectRefused(onMlp(externalDataModel(path.join(d, 'm'), '../weights.bin')), /location '\.\.\/weights\.bin' escapes the model's folder/);
  });

  it('an absolute location', async () => {
    const d = fs.mkdtempSync(file('ext-abs-'));
    await expectRefused(onMlp(externalDataModel(d, '/etc/hostname', { write: false })), /location '\/etc\/hostname' is absolute/);
  });

  it('a symlink pointing out of the model folder', async () => {
    const d = fs.mkdtempSync(file('ext-link-'));
    fs.mkdirSync(path.join(d, 'm'));
    externalDataModel(d, 'weights.bin');
    fs.symlinkSync(path.join(d, 'weights.bin'), path.join(d, 'm', 'link.bin'));
    await expectRefused(onMlp(externalDataModel(path.join(d, 'm'), 'link.bin', { write: false })), /location 'link\.bin' escapes the model's folder/);
  });

  it('a model over 2 GiB (sparse external data) is refused up front, without reading the weights', async () => {
    const d = fs.mkdtempSync(file('ext-huge-'));
    const model = hugeExternalModel(d, 2.5);
    expect(fs.statSync(path.join(d, 'huge.bin')).size).toBeGreaterThan(2 ** 31);
    const before = process.memoryUsage().rss;
    let error: unknown;
    try {
      loadModel(model);
    } catch (e) {
      error = e;
    }
    expect(isUserError(error)).toBe(true);
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 2 ** 20);
    await expectRefused(onMlp(model), /huge\.onnx: holds 2\.50 GiB of weights in external data; .* cannot exceed 2 GiB/);
  });

  it('external data shorter than a tensor claims', async () => {
    const d = fs.mkdtempSync(file('ext-short-'));
    const model = externalDataModel(d, 'weights.bin');
    fs.truncateSync(path.join(d, 'weights.bin'), 1000);
    await expectRefused(onMlp(model), /ext\.onnx: tensor '.+' asks for bytes .* the external data file is truncated/);
  });
});

describe('broken data sets', () => {
  const x = (n: number) => new Float32Array(n * 784);
  const labels = (n: number, v = 0n) => Array.from({ length: n }, () => v);

  it('NaN in the inputs, reported by sample', async () => {
    const v = x(8);
    v[5 * 784 + 3] = NaN;
    await expectRefused(onData(dataSet(file('nan.npz'), v, [8, 1, 28, 28], labels(8))), /nan\.npz: array 'x' holds NaN at sample 5 \(1 non-finite value in all\)/);
  });

  it('the wrong dtype (float data of another width is converted instead)', async () => {
    const f = file('i32.npz');
    writeNpz(f, { x: { dtype: 'int32', shape: [2, 1, 28, 28], data: new Int32Array(2 * 784) }, y: { dtype: 'int64', shape: [2], data: new BigInt64Array(2) } });
    await expectRefused(onData(f), /i32\.npz: array 'x' has dtype int32 but model input 'input' expects float32; .*astype\(np\.float32\)/);
  });

  it('the wrong rank', async () => {
    await expectRefused(onData(dataSet(file('rank.npz'), x(2), [2, 784], labels(2))), /rank\.npz: .*rank 2 vs 4.*reshape\(-1, 1, 28, 28\)/);
  });

  it('the wrong shape', async () => {
    await expectRefused(onData(dataSet(file('shape.npz'), new Float32Array(2 * 1024), [2, 1, 32, 32], labels(2))), /shape\.npz: .*\[2,1,32,32\].*axis 2: 32 vs 28/);
  });

  it('an empty data set', async () => {
    await expectRefused(onData(dataSet(file('empty.npz'), x(0), [0, 1, 28, 28], []) ), /empty\.npz: .*holds 0 samples/);
  });

  it('labels out of range for the model (found while evaluating: the pruned model must not be published)', async () => {
    await expectRefused(onData(dataSet(file('labels.npz'), x(8), [8, 1, 28, 28], labels(8, 17n))), /labels\.npz: label 17 at index 0 is out of range for a model with 10 classes/);
  });

  it('not an npz at all', async () => {
    fs.writeFileSync(file('junk.npz'), 'not a zip');
    await expectRefused(onData(file('junk.npz')), /junk\.npz: not a NumPy \.npz archive/);
  });
});

describe('bad configs and budgets', () => {
  it('an unknown key names its path and suggests the right one', async () => {
    fs.writeFileSync(file('key.yml'), 'latency:\n  rnus: 3\n');
    await expectRefused(onMlp(MLP, '--config', file('key.yml')), /key\.yml:2: unknown key 'latency\.rnus'; did you mean 'runs'\?/);
  });

  it('a wrong type names the key and what it must be', async () => {
    fs.writeFileSync(file('type.yml'), 'sparsity: half\n');
    await expectRefused(onMlp(MLP, '--config', file('type.yml')), /type\.yml:1: 'sparsity' must be a fraction from 0 to below 1 like 0\.5 \(got "half"\)/);
  });

  it('a YAML alias bomb', async () => {
    const rows = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (const [k, prev] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd'], ['f', 'e']]) rows.push(`${k}: &${k} [${Array(9).fill(`*${prev}`).join(',')}]`);
    fs.writeFileSync(file('bomb.yml'), rows.join('\n') + '\n');
    await expectRefused(onMlp(MLP, '--config', file('bomb.yml')), /bomb\.yml: YAML cannot be read \(Excessive alias count/);
  });

  it('a negative accuracy-drop budget', async () => {
    await expectRefused(onMlp(MLP, '--budget', 'accuracy-drop=-0.1'), /--budget accuracy-drop=-0\.1: 'accuracy-drop' must be points from 0 to 100/);
  });

  it('a non-positive time budget', async () => {
    await expectRefused(onMlp(MLP, '--time-budget', '0'), /--time-budget must be a number of seconds above 0/);
  });

  it('a speed-up unstructured pruning can never give is called out before measuring', async () => {
    const out = file('out-speedup');
    const r = await runCli(['run', '--out', out, ...FAST, ...onMlp(MLP, '--budget', 'min-speedup=1000', '--quiet')]);
    const lines = r.stderr.split('\n');
    const note = lines.findIndex((l) => /note: budget min-speedup=1000 will most likely fail: unstructured pruning keeps every tensor shape/.test(l));
    expect(note, r.stderr).toBeGreaterThanOrEqual(0);
    expect(note).toBeLessThan(lines.findIndex((l) => /evaluate dense/.test(l)));
    expect(r.code).toBe(1);
    const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8'));
    expect(ledger.models[0].budgets.find((b: { name: string }) => b.name === 'min-speedup').verdict).toBe('fail');
  });
});

describe('a bad --out', () => {
  it('an existing file instead of a folder', async () => {
    fs.writeFileSync(file('not-a-folder'), 'x');
    const r = await runCli(['run', '--model', MLP, '--data', DATA, '--out', file('not-a-folder'), ...FAST]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`prune-guard: error: --out ${file('not-a-folder')}: is a file, not a folder; pass a folder path for the outputs`);
    expect(fs.readFileSync(file('not-a-folder'), 'utf8')).toBe('x');
  });
});

describe('the reader refuses hostile bytes in process too', () => {
  it('nested subgraph bytes are a UserError, not a stack overflow', () => {
    expect(() => parseModel(deeplyNestedBytes(100_000), 'deep.onnx')).toThrow(/deep\.onnx: not a valid ONNX model/);
  });
});
