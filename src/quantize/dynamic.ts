import { create } from '@bufbuild/protobuf';
import picomatch from 'picomatch';
import { GraphIndex, nodeLabel, topologicalOrder } from '../onnx/graph.js';
import { cloneModel, opsetVersion } from '../onnx/model.js';
import { AttributeProto_AttributeType as AT, AttributeProtoSchema, NodeProtoSchema, TensorProtoSchema, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto/onnx_pb.js';
import { DataType, tensorDims, tensorToFloat32 } from '../onnx/tensor.js';
import { quantizeWeight, type WeightBits } from './params.js';

/** MatMulInteger and DynamicQuantizeLinear start at opset 10; per-column weight zero points need nothing newer. */
export const MIN_DYNAMIC_OPSET = 10;

export interface DynamicResult {
  model: ModelProto;
  /** labels of the MatMul nodes now computed in integers */
  quantized: string[];
}

/** MatMul nodes with a float32 constant matrix on the right (W[K, N]): what dynamic quantization rewrites. */
export function dynamicCandidates(model: ModelProto, exclude: readonly string[] = []): NodeProto[] {
  const index = new GraphIndex(model.graph!);
  const isExcluded = exclude.length ? picomatch(exclude as string[]) : () => false;
  return index.order.filter((n) => {
    if (n.opType !== 'MatMul' || isExcluded(nodeLabel(n)) || index.initializers.has(n.input[0])) return false;
    const w = index.initializers.get(n.input[1]);
    return !!w && w.dataType === DataType.FLOAT && tensorDims(w).length === 2;
  });
}

function raw(name: string, dataType: number, dims: readonly number[], bytes: Uint8Array): TensorProto {
  return create(TensorProtoSchema, { name, dataType, dims: dims.map(BigInt), rawData: bytes });
}

const bytesOf = (a: Float32Array | Int8Array): Uint8Array => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength) as ArrayBuffer);

/**
 * Dynamic INT8 in the layout onnxruntime's dynamic quantizer writes: each chosen MatMul becomes
 * DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_q, x_zp, W_zp) -> Cast -> Mul(x_scale * W_scale),
 * with W int8 per output column (zero point 0). Activation ranges are measured at run time, per batch, so
 * nothing is calibrated; onnxruntime fuses the pattern into DynamicQuantizeMatMul. Returns a new model.
 */
export function quantizeDynamic(model: ModelProto, opts: { weightBits: WeightBits; exclude?: readonly string[] }): DynamicResult {
  if (opsetVersion(model) < MIN_DYNAMIC_OPSET) throw new Error(`opset ${opsetVersion(model)} has no MatMulInteger (it starts at opset ${MIN_DYNAMIC_OPSET})`);
  const out = cloneModel(model);
  const g = out.graph!;
  const index = new GraphIndex(g);
  const chosen = new Set(dynamicCandidates(out, opts.exclude).map(nodeLabel));
  const added: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const done = new Map<string, { q: string; zp: string; scale: string }>();
  const quantized: string[] = [];
  const replace = new Map<NodeProto, NodeProto[]>();
  const dynamicOf = new Map<string, { q: string; scale: string; zp: string }>();
  for (const n of index.order) {
    const label = nodeLabel(n);
    if (!chosen.has(label)) continue;
    const [x, wName] = n.input;
    let w = done.get(wName);
    if (!w) {
      const t = index.initializers.get(wName)!;
      const qw = quantizeWeight(tensorToFloat32(t), tensorDims(t), 1, opts.weightBits);
      // the int8 weight keeps the float weight's name, which it replaces
      w = { q: wName, zp: `${wName}_zero_point`, scale: `${wName}_scale` };
      inits.push(raw(wName, DataType.INT8, tensorDims(t), bytesOf(qw.values)), raw(w.zp, DataType.INT8, [qw.scales.length], new Uint8Array(qw.scales.length)), raw(w.scale, DataType.FLOAT, [qw.scales.length], bytesOf(qw.scales)));
      done.set(wName, w);
    }
    // one DynamicQuantizeLinear per activation, shared by every MatMul that reads it
    let dq = dynamicOf.get(x);
    if (!dq) {
      dq = { q: `${x}_quantized`, scale: `${x}_scale`, zp: `${x}_zero_point` };
      added.push(create(NodeProtoSchema, { name: `${x}_DynamicQuantizeLinear`, opType: 'DynamicQuantizeLinear', input: [x], output: [dq.q, dq.scale, dq.zp] }));
      dynamicOf.set(x, dq);
    }
    const base = label.replace(/[^A-Za-z0-9_.\/]/g, '_');
    const integer = `${base}_output_quantized`;
    const asFloat = `${integer}_cast`;
    const scale = `${base}_scale`;
    replace.set(n, [
      // the integer node keeps the MatMul's name, so reports tie it to the layer
      create(NodeProtoSchema, { name: n.name || `${label}_quant`, opType: 'MatMulInteger', input: [dq.q, w.q, dq.zp, w.zp], output: [integer] }),
      create(NodeProtoSchema, { name: `${label}_cast`, opType: 'Cast', input: [integer], output: [asFloat], attribute: [create(AttributeProtoSchema, { name: 'to', type: AT.INT, i: BigInt(DataType.FLOAT) })] }),
      create(NodeProtoSchema, { name: `${label}_scales_mul`, opType: 'Mul', input: [dq.scale, w.scale], output: [scale] }),
      create(NodeProtoSchema, { name: `${label}_output_scale_mul`, opType: 'Mul', input: [asFloat, scale], output: [n.output[0]] }),
    ]);
    quantized.push(label);
  }
  const nodes = [...g.node.flatMap((n) => replace.get(n) ?? [n]), ...added];
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output) if (o) producer.set(o, n);
  g.node = topologicalOrder(nodes, producer);
  const replaced = new Set(inits.map((t) => t.name));
  g.initializer = [...g.initializer.filter((t) => !replaced.has(t.name)), ...inits];
  return { model: out, quantized };
}
