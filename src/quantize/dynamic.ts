import picomatch from 'picomatch';
import { aliasedInitializer, resolveConstantAliases } from '../onnx/aliases.js';
import { ModelEditor } from '../onnx/edit.js';
import { GraphIndex, nodeLabel, sortedNodes } from '../onnx/graph.js';
import { opsetVersion } from '../onnx/model.js';
import type { ModelProto, NodeProto } from '../onnx/proto/onnx_pb.js';
import { DataType, tensorDims, tensorToFloat32 } from '../onnx/tensor.js';
import { quantizeWeight, type WeightBits } from './params.js';

/** MatMulInteger and DynamicQuantizeLinear start at opset 10; per-column weight zero points need nothing newer. */
export const MIN_DYNAMIC_OPSET = 10;

export interface DynamicResult {
  model: ModelProto;
  /** labels of the MatMul nodes now computed in integers */
  quantized: string[];
}

/**
 * MatMul nodes with a float32 constant matrix on the right (W[K, N]), also one an exporter aliased
 * through Identity: what dynamic quantization rewrites.
 */
export function dynamicCandidates(model: ModelProto, exclude: readonly string[] = []): NodeProto[] {
  const index = new GraphIndex(model.graph!);
  const isExcluded = exclude.length ? picomatch(exclude as string[]) : () => false;
  return index.order.filter((n) => {
    if (n.opType !== 'MatMul' || isExcluded(nodeLabel(n)) || index.initializers.has(n.input[0])) return false;
    const source = aliasedInitializer(index, n.input[1]);
    const w = source ? index.initializers.get(source) : undefined;
    return !!w && w.dataType === DataType.FLOAT && tensorDims(w).length === 2;
  });
}

/**
 * Dynamic INT8 in the layout onnxruntime's dynamic quantizer writes: each chosen MatMul becomes
 * DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_q, x_zp, W_zp) -> Cast -> Mul(x_scale * W_scale),
 * with W int8 per output column (zero point 0). Activation ranges are measured at run time, per batch, so
 * nothing is calibrated; onnxruntime fuses the pattern into DynamicQuantizeMatMul. Returns a new model.
 */
export function quantizeDynamic(model: ModelProto, opts: { weightBits: WeightBits; exclude?: readonly string[] }): DynamicResult {
  if (opsetVersion(model) < MIN_DYNAMIC_OPSET) throw new Error(`opset ${opsetVersion(model)} has no MatMulInteger (it starts at opset ${MIN_DYNAMIC_OPSET})`);
  // aliased weights are read from their initializer, so every candidate's weight is one
  const ed = ModelEditor.copyOf(resolveConstantAliases(model));
  const index = new GraphIndex(ed.graph);
  const candidates = dynamicCandidates(ed.model, opts.exclude);
  const chosen = new Set(candidates);
  const weights = new Map<string, { q: string; zp: string; scale: string }>();
  const dynamicOf = new Map<string, { q: string; scale: string; zp: string }>();
  const quantized: string[] = [];
  for (const n of candidates) {
    const label = nodeLabel(n);
    const [x, wName] = n.input;
    let w = weights.get(wName);
    if (!w) {
      const t = index.initializers.get(wName)!;
      const qw = quantizeWeight(tensorToFloat32(t), tensorDims(t), 1, opts.weightBits);
      // the int8 weight keeps the float weight's name when only rewritten MatMuls read it
      const inPlace = index.consumersOf(wName).every((c) => chosen.has(c));
      const q = inPlace ? wName : ed.addIntInitializer(`${wName}_quantized`, tensorDims(t), qw.values, DataType.INT8);
      if (inPlace) ed.storeAsInteger(wName, qw.values, DataType.INT8);
      w = { q, zp: ed.addIntInitializer(`${wName}_zero_point`, [qw.scales.length], new Int8Array(qw.scales.length), DataType.INT8), scale: ed.addFloatInitializer(`${wName}_scale`, [qw.scales.length], qw.scales) };
      weights.set(wName, w);
    }
    // one DynamicQuantizeLinear per activation, shared by every MatMul that reads it
    let dq = dynamicOf.get(x);
    if (!dq) {
      dq = { q: ed.fresh(`${x}_quantized`), scale: ed.fresh(`${x}_scale`), zp: ed.fresh(`${x}_zero_point`) };
      ed.addNode({ name: `${x}_DynamicQuantizeLinear`, opType: 'DynamicQuantizeLinear', inputs: [x], outputs: [dq.q, dq.scale, dq.zp] });
      dynamicOf.set(x, dq);
    }
    const out = n.output[0];
    const integer = ed.fresh(`${out}_quantized`);
    const asFloat = ed.fresh(`${out}_cast`);
    const scale = ed.fresh(`${label}_scale`);
    // the integer node keeps the MatMul's name, so reports tie it to the layer
    const mm = ed.replaceNode(n, { opType: 'MatMulInteger', inputs: [dq.q, w.q, dq.zp, w.zp], outputs: [integer] });
    const cast = ed.addNode({ name: `${label}_cast`, opType: 'Cast', inputs: [integer], outputs: [asFloat], attrs: { to: DataType.FLOAT } }, { after: mm });
    const mul = ed.addNode({ name: `${label}_scales_mul`, opType: 'Mul', inputs: [dq.scale, w.scale], outputs: [scale] }, { after: cast });
    ed.addNode({ name: `${label}_output_scale_mul`, opType: 'Mul', inputs: [asFloat, scale], outputs: [out] }, { after: mul });
    quantized.push(label);
  }
  ed.setNodes(sortedNodes(ed.graph.node));
  return { model: ed.model, quantized };
}
