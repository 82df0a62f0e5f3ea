import * as fs from 'node:fs';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeNode, valueInfo } from '../../src/onnx/build.js';
import { ModelEditor } from '../../src/onnx/edit.js';
import { cloneModel, loadModel, serializeModel } from '../../src/onnx/model.js';
import { graphNames, NameGenerator } from '../../src/onnx/names.js';
import { AttributeProto_AttributeType, AttributeProtoSchema, GraphProtoSchema, ModelProtoSchema, OperatorSetIdProtoSchema, type ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { onnxruntime } from '../../src/onnx/runtime/ort.js';
import { sessionFromModel } from '../../src/onnx/runtime/session.js';
import { DataType, floatToBf16, floatToHalf, halfToFloat, makeFloatTensor, tensorToFloat32 } from '../../src/onnx/tensor.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { onnxCheck } from '../support/onnxChecker.js';

const W = Float32Array.from({ length: 16 }, (_, i) => ((i * 7) % 5) - 2);

/**
 * x [N,4] -> MatMul(W) -> h -> Relu -> t -> Neg -> y; `t` is read by Neg and is a graph output too,
 * and `h` has a value_info declaration.
 */
function smallModel(opset = 13): ModelProto {
  return create(ModelProtoSchema, {
    irVersion: 8n,
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })],
    graph: create(GraphProtoSchema, {
      name: 'small',
      node: [
        makeNode('mm', { opType: 'MatMul', inputs: ['x', 'W'], outputs: ['h'] }),
        makeNode('relu', { opType: 'Relu', inputs: ['h'], outputs: ['t'] }),
        makeNode('neg', { opType: 'Neg', inputs: ['t'], outputs: ['y'] }),
      ],
      initializer: [makeFloatTensor('W', [4, 4], W)],
      input: [valueInfo('x', DataType.FLOAT, ['N', 4])],
      output: [valueInfo('y', DataType.FLOAT, ['N', 4]), valueInfo('t', DataType.FLOAT, ['N', 4])],
      valueInfo: [valueInfo('h', DataType.FLOAT, ['N', 4])],
    }),
  });
}

const X = Float32Array.from({ length: 8 }, (_, i) => i / 2 - 1.7);

/** The model's outputs on X ([2, 4]), by name. */
async function run(model: ModelProto): Promise<Record<string, number[]>> {
  const { ort } = onnxruntime();
  const s = await sessionFromModel(model);
  try {
    const r = await s.run({ x: new ort.Tensor('float32', X, [2, 4]) });
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Array.from(v.data as Float32Array)]));
  } finally {
    await s.release();
  }
}

/** relu(X W) computed here, row-major [2, 4]. */
function reluXW(): number[] {
  const out: number[] = [];
  for (let r = 0; r < 2; r++) for (let c = 0; c < 4; c++) {
    let v = 0;
    for (let k = 0; k < 4; k++) v += X[r * 4 + k] * W[k * 4 + c];
    out.push(Math.max(0, v));
  }
  return out;
}

function checked(model: ModelProto): void {
  const file = path.join(tempDir(), 'edited.onnx');
  fs.writeFileSync(file, serializeModel(model));
  expect(() => onnxCheck(file)).not.toThrow();
}

describe('NameGenerator', () => {
  it('hands out the base while it is free, then base_1, base_2, … skipping names already used', () => {
    const names = new NameGenerator(['a', 'a_1', 'a_3']);
    expect([names.fresh('a'), names.fresh('a'), names.fresh('a'), names.fresh('b'), names.fresh('b')]).toEqual(['a_2', 'a_4', 'a_5', 'b', 'b_1']);
    names.reserve('c');
    expect(names.fresh('c')).toBe('c_1');
    expect(() => names.fresh('')).toThrow();
  });

  it('never returns a name the graph uses anywhere (inputs, outputs, value_info, initializers, node names, subgraphs) or one it returned before', () => {
    const pool = ['x', 'y', 'x_1', 'x_2', 'y_1', 'W', 'n'];
    const roles = ['input', 'output', 'valueInfo', 'initializer', 'nodeName', 'nodeOutput', 'subgraph'] as const;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...pool), fc.constantFrom(...roles)), { maxLength: 12 }), fc.array(fc.constantFrom(...pool), { minLength: 1, maxLength: 20 }), (placed, bases) => {
        const m = smallModel();
        const g = m.graph!;
        for (const [name, role] of placed) {
          if (role === 'input') g.input.push(valueInfo(name));
          else if (role === 'output') g.output.push(valueInfo(name));
          else if (role === 'valueInfo') g.valueInfo.push(valueInfo(name));
          else if (role === 'initializer') g.initializer.push(makeFloatTensor(name, [1], new Float32Array(1)));
          else if (role === 'nodeName') g.node[0].name = name;
          else if (role === 'nodeOutput') g.node.push(makeNode('', { opType: 'Identity', inputs: ['x'], outputs: [name] }));
          else {
            const body = create(GraphProtoSchema, { name: 'body', node: [makeNode('inner', { opType: 'Identity', inputs: ['x'], outputs: [name] })] });
            const ifNode = makeNode('if', { opType: 'If', inputs: ['c'], outputs: ['r'] });
            ifNode.attribute.push(create(AttributeProtoSchema, { name: 'then_branch', type: AttributeProto_AttributeType.GRAPH, g: body }));
            g.node.push(ifNode);
          }
        }
        const before = graphNames(g);
        const ed = new ModelEditor(m);
        const seen = new Set<string>();
        for (const b of bases) {
          const name = ed.fresh(b);
          expect(before.has(name)).toBe(false);
          expect(seen.has(name)).toBe(false);
          seen.add(name);
        }
      }),
    );
  });
});

describe('ModelEditor', () => {
  it('insertAfter puts the node between a tensor and all its readers: consumers and the graph output of that name get its result', async () => {
    const dense = smallModel();
    const ed = ModelEditor.copyOf(dense);
    const s = ed.addFloatInitializer('scale', [], Float32Array.of(3));
    const mul = ed.insertAfter('t', { opType: 'Mul', inputs: ['t', s], name: 'scale_t' });
    const relu = ed.graph.node.find((n) => n.name === 'relu')!;
    // the producer writes a fresh name, the new node reads it and writes 't', right after the producer
    expect(relu.output).toEqual(['t_before_Mul']);
    expect(mul.input).toEqual(['t_before_Mul', 'scale']);
    expect(mul.output).toEqual(['t']);
    expect(ed.graph.node.map((n) => n.name)).toEqual(['mm', 'relu', 'scale_t', 'neg']);
    expect(ed.producer('t')).toBe(mul);
    expect(ed.producer('t_before_Mul')).toBe(relu);
    expect(ed.consumers('t_before_Mul')).toEqual([mul]);
    expect(ed.consumers('t').map((n) => n.name)).toEqual(['neg']);
    expect(ed.graph.output.map((o) => o.name)).toEqual(['y', 't']);

    const want = reluXW();
    const out = await run(ed.model);
    out.t.forEach((v, i) => expect(v).toBeCloseTo(3 * want[i], 5));
    out.y.forEach((v, i) => expect(v).toBeCloseTo(-3 * want[i], 5));
    // the caller's model is untouched
    (await run(dense)).t.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
    checked(ed.model);
  });

  it('insertAfter moves the producer-side value_info to the renamed tensor', () => {
    const ed = ModelEditor.copyOf(smallModel());
    const two = ed.addFloatInitializer('two', [], Float32Array.of(2));
    ed.insertAfter('h', { opType: 'Mul', inputs: ['h', two] }, 'h_raw');
    expect(ed.graph.valueInfo.map((v) => v.name)).toEqual(['h_raw']);
    expect(ed.graph.node.find((n) => n.opType === 'MatMul')!.output).toEqual(['h_raw']);
    checked(ed.model);
  });

  it('replaceInitializer keeps the element type: float16 and bfloat16 weights stay 16-bit, rounded', () => {
    const m = smallModel();
    const g = m.graph!;
    g.initializer.push(makeFloatTensor('h16', [3], Float32Array.of(1, 2, 3), DataType.FLOAT16), makeFloatTensor('b16', [3], Float32Array.of(1, 2, 3), DataType.BFLOAT16));
    const ed = new ModelEditor(m);
    const v = Float32Array.of(0.1, -65504, 1 / 3);
    const h = ed.replaceInitializer('h16', v);
    const b = ed.replaceInitializer('b16', v);
    expect(h.dataType).toBe(DataType.FLOAT16);
    expect(b.dataType).toBe(DataType.BFLOAT16);
    expect(h.rawData.byteLength).toBe(6);
    expect(Array.from(tensorToFloat32(h))).toEqual(Array.from(v, (x) => halfToFloat(floatToHalf(x))));
    expect(Array.from(new Uint16Array(b.rawData.slice().buffer))).toEqual(Array.from(v, floatToBf16));
    // a reshaping replace keeps the type too
    const w = ed.replaceInitializer('W', Float32Array.of(1, 2, 3, 4), [4, 1]);
    expect(w.dataType).toBe(DataType.FLOAT);
    expect(w.dims).toEqual([4n, 1n]);
    expect(() => ed.replaceInitializer('h16', Float32Array.of(1))).toThrow(/values for shape/);
  });

  it('adds initializers in the element type asked for, and removes them with their graph-input entry', () => {
    const ed = ModelEditor.copyOf(smallModel());
    const half = ed.addFloatInitializer('W', [2], Float32Array.of(0.5, 1.5), DataType.FLOAT16);
    expect(half).toBe('W_1');
    expect(ed.initializer(half)!.dataType).toBe(DataType.FLOAT16);
    const i32 = ed.addIntInitializer('shape', [2], [-1, 4], DataType.INT32);
    expect(ed.initializer(i32)!.dataType).toBe(DataType.INT32);
    expect(ed.initializer(ed.addIntInitializer('shape', [1], [7]))!.dataType).toBe(DataType.INT64);
    // an older exporter's listing of an initializer among the inputs
    ed.graph.input.push(valueInfo(half, DataType.FLOAT16, [2]));
    expect(ed.dataInputs().map((i) => i.name)).toEqual(['x']);
    ed.removeInitializers([half]);
    expect(ed.initializer(half)).toBeUndefined();
    expect(ed.graph.input.map((i) => i.name)).toEqual(['x']);
    expect(() => ed.removeInitializers(['nope'])).toThrow();
  });

  it('replaceNode keeps the place and name, removeNode and addNode keep producer and consumer lookups right', async () => {
    const ed = ModelEditor.copyOf(smallModel());
    const relu = ed.producer('t')!;
    const sig = ed.replaceNode(relu, { opType: 'Sigmoid', inputs: ['h'], outputs: ['t'] });
    expect(sig.name).toBe('relu');
    expect(ed.graph.node[1]).toBe(sig);
    expect(ed.producer('t')).toBe(sig);
    expect(ed.consumers('h')).toEqual([sig]);
    const neg = ed.producer('y')!;
    const abs = ed.addNode({ opType: 'Abs', inputs: ['t'], outputs: [ed.fresh('t_abs')] }, { after: sig });
    ed.setInput(neg, 0, abs.output[0]);
    expect(ed.consumers('t')).toEqual([abs]);
    expect(ed.consumers('t_abs')).toEqual([neg]);
    expect(ed.graph.node.map((n) => n.opType)).toEqual(['MatMul', 'Sigmoid', 'Abs', 'Neg']);
    const out = await run(ed.model);
    const h: number[] = [];
    for (let r = 0; r < 2; r++) for (let c = 0; c < 4; c++) {
      let v = 0;
      for (let k = 0; k < 4; k++) v += X[r * 4 + k] * W[k * 4 + c];
      h.push(v);
    }
    out.y.forEach((v, i) => expect(v).toBeCloseTo(-1 / (1 + Math.exp(-h[i])), 5));
    checked(ed.model);
    ed.setInput(neg, 0, 't');
    ed.removeNode(abs);
    expect(ed.producer('t_abs')).toBeUndefined();
    expect(ed.consumers('t')).toEqual([neg]);
    checked(ed.model);
  });

  it('dropUnread removes unread nodes of the named kinds and unread initializers, until nothing changes', () => {
    const ed = ModelEditor.copyOf(smallModel());
    const c = ed.addFloatInitializer('c', [4], new Float32Array(4));
    ed.addNode({ opType: 'Identity', inputs: [c], outputs: ['c1'] });
    ed.addNode({ opType: 'Identity', inputs: ['c1'], outputs: ['c2'] });
    ed.graph.input.push(valueInfo(c, DataType.FLOAT, [4]));
    ed.dropUnread(new Set(['Identity']), { initializers: false });
    expect(ed.graph.node.map((n) => n.opType)).toEqual(['MatMul', 'Relu', 'Neg']);
    expect(ed.producer('c1')).toBeUndefined();
    expect(ed.initializer(c)).toBeDefined();
    ed.dropUnread(new Set(), { initializers: true });
    expect(ed.initializer(c)).toBeUndefined();
    expect(ed.graph.initializer.map((t) => t.name)).toEqual(['W']);
    expect(ed.graph.input.map((i) => i.name)).toEqual(['x']);
    checked(ed.model);
  });

  it('reports the opset the model imports, so a rewrite can pick the op form valid there', () => {
    expect(new ModelEditor(smallModel(7)).opset()).toBe(7);
    expect(new ModelEditor(smallModel(21)).opset()).toBe(21);
    expect(new ModelEditor(smallModel()).opset('com.microsoft')).toBe(0);
    const m = smallModel();
    m.opsetImport[0].domain = 'ai.onnx';
    expect(new ModelEditor(m).opset()).toBe(13);
  });

  it('declares outputs once and value_info by name; the result passes onnx.checker and runs', async () => {
    const ed = ModelEditor.copyOf(smallModel());
    ed.declareOutput(valueInfo('h'));
    ed.declareOutput(valueInfo('h', DataType.FLOAT16));
    ed.declareOutput(valueInfo('y'));
    expect(ed.graph.output.map((o) => o.name)).toEqual(['y', 't', 'h']);
    const declared = ed.graph.output[2].type!.value;
    expect(declared.case === 'tensorType' && declared.value.elemType).toBe(DataType.FLOAT);
    ed.declareValueInfo(valueInfo('h', DataType.FLOAT, ['N', 4]));
    expect(ed.graph.valueInfo.length).toBe(1);
    const out = await run(ed.model);
    expect(Object.keys(out).sort()).toEqual(['h', 't', 'y']);
    ed.setOutputs([valueInfo('y', DataType.FLOAT, ['N', 4])]);
    ed.clearValueInfo();
    expect(Object.keys(await run(ed.model))).toEqual(['y']);
    checked(ed.model);
  });

  it('an editor that edits nothing leaves the saved bytes of a real model unchanged', () => {
    const { proto } = loadModel(fixture('resnet.onnx'));
    const ed = new ModelEditor(cloneModel(proto));
    ed.dropUnread(new Set(['Constant']), { initializers: true });
    ed.redeclareInitializerInputs();
    expect(Buffer.from(serializeModel(ed.model)).equals(Buffer.from(serializeModel(proto)))).toBe(true);
  });
});
