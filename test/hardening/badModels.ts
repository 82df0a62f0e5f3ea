/** Builders of broken and hostile inputs for the hardening tests; each returns the path it wrote. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { cloneModel, loadModel, serializeModel } from '../../src/onnx/model.js';
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  NodeProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataLocation,
  type ModelProto,
} from '../../src/onnx/proto/onnx_pb.js';
import { writeNpz } from '../../src/data/npz.js';
import { fixture } from '../support/fixtures.js';

export const MLP = fixture('mlp.onnx');

export function mlp(): ModelProto {
  return cloneModel(loadModel(MLP).proto);
}

export function writeModel(file: string, proto: ModelProto): string {
  fs.writeFileSync(file, serializeModel(proto));
  return file;
}

/** The MLP with one weight value replaced (NaN, Inf). */
export function withWeightValue(file: string, value: number): string {
  const m = mlp();
  const t = m.graph!.initializer.find((i) => i.dims.length === 2)!;
  const f = new Float32Array(t.rawData.slice().buffer);
  f[3] = value;
  t.rawData = new Uint8Array(f.buffer);
  return writeModel(file, m);
}

/** A varint as protobuf writes it. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

function field(no: number, payload: number[]): number[] {
  return [...varint((no << 3) | 2), ...varint(payload.length), ...payload];
}

/**
 * Raw bytes of a ModelProto whose graph nests If-style subgraph attributes `depth` levels deep. Built
 * from the inside out as prefix/suffix pieces, so it stays linear in `depth`.
 */
export function deeplyNestedBytes(depth: number): Uint8Array {
  const prefixes: number[][] = [];
  const suffixes: number[][] = [];
  const opType = field(4, [...Buffer.from('If')]);
  const attrName = field(1, [0x67]); // "g"
  const attrType = [0xa0, 0x01, 5]; // type = GRAPH
  let inner = 0; // length of the innermost graph so far
  for (let i = 0; i < depth; i++) {
    const attribute = attrName.length + varint((6 << 3) | 2).length + varint(inner).length + inner + attrType.length;
    const node = opType.length + 1 + varint(attribute).length + attribute;
    const graph = 1 + varint(node).length + node;
    // graph{ node{ op_type, attribute{ name, g{ <inner> }, type } } }
    prefixes.push([0x0a, ...varint(node), ...opType, 0x2a, ...varint(attribute), ...attrName, 0x32, ...varint(inner)]);
    suffixes.push(attrType);
    inner = graph;
  }
  const head = [0x08, 8, ...field(8, [0x10, 13]), 0x3a, ...varint(inner)];
  const parts = [head, ...prefixes.reverse(), ...suffixes];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The MLP with a valid but `depth`-deep chain of subgraph attributes on its first node. */
export function nestedSubgraphModel(file: string, depth: number): string {
  const m = mlp();
  let g = create(GraphProtoSchema, { name: 'leaf' });
  for (let i = 0; i < depth; i++) {
    const n = create(NodeProtoSchema, {
      opType: 'If',
      attribute: [create(AttributeProtoSchema, { name: 'then_branch', type: AttributeProto_AttributeType.GRAPH, g })],
    });
    g = create(GraphProtoSchema, { name: `g${i}`, node: [n] });
  }
  m.graph!.node[0].attribute.push(create(AttributeProtoSchema, { name: 'nested', type: AttributeProto_AttributeType.GRAPH, g }));
  return writeModel(file, m);
}

/**
 * The MLP with its initializers moved to external data at `location` (relative to the model), as
 * onnx.save_model(save_as_external_data=True) does. `bytes` overrides the data file's content.
 */
export function externalDataModel(dir: string, location: string, opts: { write?: boolean } = {}): string {
  const m = mlp();
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of m.graph!.initializer) {
    const raw = t.rawData;
    t.externalData = [
      create(StringStringEntryProtoSchema, { key: 'location', value: location }),
      create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
      create(StringStringEntryProtoSchema, { key: 'length', value: String(raw.byteLength) }),
    ];
    t.dataLocation = TensorProto_DataLocation.EXTERNAL;
    t.rawData = new Uint8Array();
    chunks.push(raw);
    offset += raw.byteLength;
  }
  if (opts.write !== false) fs.writeFileSync(path.resolve(dir, location), Buffer.concat(chunks));
  return writeModel(path.join(dir, 'ext.onnx'), m);
}

/**
 * A model whose first weight claims `gib` GiB of external data in a sparse file: fs.truncate makes the
 * file that big without using disk, so the > 2 GiB path can be tested on any runner.
 */
export function hugeExternalModel(dir: string, gib: number): string {
  const m = mlp();
  const t = m.graph!.initializer.find((i) => i.dims.length === 2)!;
  const bytes = Math.floor(gib * 2 ** 30);
  const floats = Math.floor(bytes / 4);
  t.dims = [BigInt(floats / 1024), 1024n];
  t.externalData = [
    create(StringStringEntryProtoSchema, { key: 'location', value: 'huge.bin' }),
    create(StringStringEntryProtoSchema, { key: 'offset', value: '0' }),
    create(StringStringEntryProtoSchema, { key: 'length', value: String(floats * 4) }),
  ];
  t.dataLocation = TensorProto_DataLocation.EXTERNAL;
  t.rawData = new Uint8Array();
  fs.writeFileSync(path.join(dir, 'huge.bin'), '');
  fs.truncateSync(path.join(dir, 'huge.bin'), floats * 4);
  return writeModel(path.join(dir, 'huge.onnx'), m);
}

/** A Fashion-MNIST-shaped data set with the given inputs and labels. */
export function dataSet(file: string, x: Float32Array | Float64Array, shape: number[], y: bigint[] | null): string {
  const arrays: Parameters<typeof writeNpz>[1] = {
    x: { dtype: x instanceof Float64Array ? 'float64' : 'float32', shape, data: x },
  };
  if (y) arrays.y = { dtype: 'int64', shape: [y.length], data: BigInt64Array.from(y) };
  writeNpz(file, arrays);
  return file;
}
