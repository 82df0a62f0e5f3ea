import { ModelEditor } from '../onnx/edit.js';
import { GraphIndex, attrFloat, attrInt, nodeLabel, sortedNodes } from '../onnx/graph.js';
import { opsetVersion } from '../onnx/model.js';
import type { ModelProto, NodeProto, TensorProto } from '../onnx/proto/onnx_pb.js';
import { DataType, dataTypeName, tensorDims, tensorToFloat32 } from '../onnx/tensor.js';
import type { Range } from './calibrate.js';
import { activationParams, quantizeBias, quantizeWeight, type ActivationType, type QParams, type WeightBits } from './params.js';

/**
 * Static QDQ quantization in the layout onnxruntime's own quantizer writes (QuantFormat.QDQ, U8S8 or S8S8):
 * every activation a quantized node reads or writes passes through QuantizeLinear -> DequantizeLinear
 * (uint8 or int8, per tensor); weights are int8 initializers behind a per-channel DequantizeLinear; biases of
 * Conv and Gemm are int32 at scale input_scale * weight_scale. onnxruntime's graph optimiser then fuses
 * each DequantizeLinear -> op -> QuantizeLinear pattern into its integer kernel (QLinearConv, QGemm, ...).
 */

/** Ops with a constant weight operand, run by onnxruntime as QLinearConv / QGemm / QLinearMatMul. */
const WEIGHTED = new Set(['Conv', 'Gemm', 'MatMul']);
/** Ops whose every input is an activation, with an integer kernel of their own (QLinearAdd, QLinearConcat, ...). */
const ACTIVATION_OPS = new Set(['Add', 'Mul', 'Concat', 'GlobalAveragePool', 'AveragePool', 'Sigmoid', 'LeakyRelu']);
/**
 * Ops that only move or select values: onnxruntime drops the QuantizeLinear/DequantizeLinear around
 * them when both sides share scale and zero point, so they run on the 8-bit data as they are.
 */
const PASS_THROUGH = new Set(['MaxPool', 'Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze']);

/** The op kinds a plan can choose to keep in float. */
export type QuantizableKind = 'conv' | 'depthwise-conv' | 'gemm' | 'matmul' | 'activation-op' | 'pass-through';

/** Lowest opset with QuantizeLinear/DequantizeLinear, and the one that adds their `axis` (per-channel). */
export const MIN_QDQ_OPSET = 10;
export const PER_CHANNEL_OPSET = 13;

/** Why static QDQ cannot be written for a model: what the rewrite needs that the export lacks. */
export type QdqRefusal =
  | { kind: 'opset'; opset: number }
  | { kind: 'input-type'; input: string; type: number }
  | { kind: 'weight-type'; node: string; type: number; behindCast: boolean };

/** Whether static QDQ can be written at this model's opset and types, and at what granularity. */
export type QdqSupport =
  | { kind: 'per-channel' }
  | { kind: 'per-tensor'; reason: string }
  | { kind: 'unsupported'; refusal: QdqRefusal; reason: string };

/** One line: what the rewrite needs and how to re-export the model for it. */
export function qdqRefusalMessage(r: QdqRefusal): string {
  switch (r.kind) {
    case 'opset':
      return `opset ${r.opset} has no QuantizeLinear/DequantizeLinear (they start at opset ${MIN_QDQ_OPSET}); re-export the model at opset 13 or later`;
    case 'input-type':
      return `input '${r.input}' is ${dataTypeName(r.type).toLowerCase()}, not float32; INT8 quantization here starts from a float32 model, so quantize the float32 export`;
    case 'weight-type':
      return `the weight of '${r.node}' is stored as ${dataTypeName(r.type).toLowerCase()}${r.behindCast ? ' behind a Cast' : ''}, not float32; INT8 quantization here starts from float32 weights, so quantize the float32 export`;
  }
}

const NOT_FLOAT32 = new Set<number>([DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

/** The first Conv, Gemm or MatMul whose constant weight is a float other than float32, stored as it is or behind a Cast. */
function otherFloatWeight(index: GraphIndex): QdqRefusal | undefined {
  for (const n of index.order) {
    if (!WEIGHTED.has(n.opType) || !n.input[1]) continue;
    const stored = index.initializers.get(n.input[1]);
    if (stored && NOT_FLOAT32.has(stored.dataType)) return { kind: 'weight-type', node: nodeLabel(n), type: stored.dataType, behindCast: false };
    const cast = index.producer.get(n.input[1]);
    const source = cast?.opType === 'Cast' ? index.initializers.get(cast.input[0]) : undefined;
    if (source && NOT_FLOAT32.has(source.dataType)) return { kind: 'weight-type', node: nodeLabel(n), type: source.dataType, behindCast: true };
  }
  return undefined;
}

export function qdqSupport(model: ModelProto): QdqSupport {
  const refuse = (refusal: QdqRefusal): QdqSupport => ({ kind: 'unsupported', refusal, reason: qdqRefusalMessage(refusal) });
  const opset = opsetVersion(model);
  if (opset < MIN_QDQ_OPSET) return refuse({ kind: 'opset', opset });
  const g = model.graph!;
  const inits = new Set(g.initializer.map((t) => t.name));
  const floatInput = g.input.find((i) => !inits.has(i.name) && i.type?.value.case === 'tensorType' && NOT_FLOAT32.has(i.type.value.value.elemType));
  if (floatInput && floatInput.type?.value.case === 'tensorType') return refuse({ kind: 'input-type', input: floatInput.name, type: floatInput.type.value.value.elemType });
  const weight = otherFloatWeight(new GraphIndex(g));
  if (weight) return refuse(weight);
  if (opset < PER_CHANNEL_OPSET) return { kind: 'per-tensor', reason: `opset ${opset}: DequantizeLinear has no axis before opset 13, so weights get one scale per tensor` };
  return { kind: 'per-channel' };
}

export interface QuantizableNode {
  label: string;
  opType: string;
  kind: QuantizableKind;
  /** Conv only: input channels and group count, to recognise a narrow first layer and depthwise convs */
  inChannels?: number;
  groups?: number;
}

function initializerFloat(index: GraphIndex, name: string | undefined): TensorProto | undefined {
  const t = name ? index.initializers.get(name) : undefined;
  return t && t.dataType === DataType.FLOAT ? t : undefined;
}

/** The float activation inputs of a node the rewrite quantizes (weights and shape operands excluded). */
function activationInputs(node: NodeProto, index: GraphIndex): string[] {
  if (PASS_THROUGH.has(node.opType)) return [node.input[0]];
  if (node.opType === 'Conv' || node.opType === 'Gemm') return [node.input[0]];
  if (node.opType === 'MatMul') return node.input.filter((i) => !index.initializers.has(i));
  return node.input.filter((i) => i);
}

/**
 * What the rewrite can quantize in this model, with why not for the rest left out silently (ops it has
 * no rule for stay float, as in onnxruntime's quantizer). A node qualifies when its weight is a float32
 * initializer in a layout the integer kernels take and its other inputs are activations.
 */
export function quantizableNodes(model: ModelProto): QuantizableNode[] {
  const index = new GraphIndex(model.graph!);
  const out: QuantizableNode[] = [];
  for (const n of index.order) {
    const label = nodeLabel(n);
    if (n.opType === 'Conv') {
      const w = initializerFloat(index, n.input[1]);
      if (!w || tensorDims(w).length !== 4 || index.initializers.has(n.input[0])) continue;
      if (n.input[2] && !initializerFloat(index, n.input[2])) continue;
      const dims = tensorDims(w);
      const groups = attrInt(n, 'group', 1);
      const inChannels = dims[1] * groups;
      const depthwise = groups > 1 && groups === inChannels && dims[1] === 1;
      out.push({ label, opType: n.opType, kind: depthwise ? 'depthwise-conv' : 'conv', inChannels, groups });
    } else if (n.opType === 'Gemm') {
      const w = initializerFloat(index, n.input[1]);
      if (!w || tensorDims(w).length !== 2 || attrInt(n, 'transA', 0) !== 0) continue;
      if (attrFloat(n, 'alpha', 1) !== 1 || (n.input[2] && attrFloat(n, 'beta', 1) !== 1)) continue;
      const c = n.input[2] ? initializerFloat(index, n.input[2]) : undefined;
      if (n.input[2] && (!c || tensorDims(c).length !== 1)) continue;
      out.push({ label, opType: n.opType, kind: 'gemm' });
    } else if (n.opType === 'MatMul') {
      const consts = n.input.filter((i) => index.initializers.has(i));
      // a constant operand must be a float32 matrix on the right: W[K, N], channels along N
      if (consts.length > 1 || (consts.length === 1 && (consts[0] !== n.input[1] || !initializerFloat(index, n.input[1]) || tensorDims(index.initializers.get(n.input[1])!).length !== 2))) continue;
      out.push({ label, opType: n.opType, kind: 'matmul' });
    } else if (ACTIVATION_OPS.has(n.opType)) {
      if (n.input.some((i) => i && index.constant(i))) continue;
      out.push({ label, opType: n.opType, kind: 'activation-op' });
    } else if (PASS_THROUGH.has(n.opType)) {
      if (index.constant(n.input[0])) continue;
      out.push({ label, opType: n.opType, kind: 'pass-through' });
    }
  }
  return out;
}

export interface QdqOptions {
  /** calibrated float range of every activation a quantized node reads or writes */
  ranges: ReadonlyMap<string, Range>;
  /** labels (nodeLabel) of nodes to leave in float */
  keepFloat: ReadonlySet<string>;
  weightBits: WeightBits;
  /** element type of every quantized activation: the same grid either way, run by different integer kernels */
  activations: ActivationType;
  /** per-channel weight scales; forced off below opset 13, where DequantizeLinear has no axis */
  perChannel: boolean;
}

export interface QdqResult {
  model: ModelProto;
  /** labels of the nodes that now read and write quantized tensors, in graph order */
  quantized: string[];
  /** Relu nodes removed because the 8-bit grid of their producer's output (real 0 at its lowest level) already clips at 0 */
  absorbed: string[];
  /** activation tensors given a QuantizeLinear/DequantizeLinear pair */
  tensors: string[];
  perChannel: boolean;
}

/**
 * The activation tensors the rewrite will quantize for a plan, before any change: what calibration
 * must measure. Includes both the input and output of each Relu that may be absorbed.
 */
export function tensorsToCalibrate(model: ModelProto, keepFloat: ReadonlySet<string> = new Set()): string[] {
  const index = new GraphIndex(model.graph!);
  const chosen = chooseNodes(index, keepFloat);
  const names = new Set<string>();
  for (const n of chosen) {
    for (const i of activationInputs(n, index)) names.add(i);
    names.add(n.output[0]);
    for (const c of index.consumersOf(n.output[0])) if (c.opType === 'Relu') names.add(c.output[0]);
  }
  return [...names].filter((t) => t && !index.initializers.has(t));
}

function chooseNodes(index: GraphIndex, keepFloat: ReadonlySet<string>): NodeProto[] {
  const allowed = new Set(quantizableNodes({ graph: index.graph } as ModelProto).map((q) => q.label));
  const core = new Set(index.order.filter((n) => allowed.has(nodeLabel(n)) && !keepFloat.has(nodeLabel(n)) && !PASS_THROUGH.has(n.opType)));
  // a pass-through op is worth quantizing only next to a quantized op (otherwise it is just a round trip):
  // grow through chains of them from either side until nothing changes. After a layer that stays float
  // the op stays float too: a MaxPool then runs in the float kernels' blocked layout and the
  // QuantizeLinear reads its smaller output, where a uint8 MaxPool between a float conv and the integer
  // ones runs in plain NCHW (on the fixture CNN 24x slower than the blocked float one)
  const pass = index.order.filter((n) => allowed.has(nodeLabel(n)) && !keepFloat.has(nodeLabel(n)) && PASS_THROUGH.has(n.opType));
  const chosen = new Set(core);
  for (let changed = true; changed; ) {
    changed = false;
    for (const p of pass) {
      if (chosen.has(p)) continue;
      const producer = index.producer.get(p.input[0]);
      const afterFloatLayer = producer !== undefined && !PASS_THROUGH.has(producer.opType) && !chosen.has(producer);
      const toQuantized = !afterFloatLayer && index.consumersOf(p.output[0]).some((c) => chosen.has(c) || (c.opType === 'Relu' && index.consumersOf(c.output[0]).some((d) => chosen.has(d))));
      if ((producer && chosen.has(producer)) || toQuantized) {
        chosen.add(p);
        changed = true;
      }
    }
  }
  return index.order.filter((n) => chosen.has(n));
}




/**
 * Rewrite a float model (BatchNormalization already folded) into static QDQ form. Returns a new model;
 * the input is not changed. Every activation the chosen nodes touch must have a calibrated range.
 */
export function quantizeQdq(model: ModelProto, opts: QdqOptions): QdqResult {
  const ed = ModelEditor.copyOf(model);
  const perChannel = opts.perChannel && ed.opset() >= PER_CHANNEL_OPSET;
  let index = new GraphIndex(ed.graph);
  const chosen = new Set(chooseNodes(index, opts.keepFloat));

  // Relu after a quantized producer: a range starting at 0 puts real 0 at the grid's lowest level (zero
  // point 0 in uint8, -128 in int8), so the grid clips at 0, which is exactly ReLU; the Relu goes and the
  // producer writes its output (onnxruntime's quantizer does the same; the fused kernel never leaves 8 bits)
  const absorbed: string[] = [];
  for (const n of index.order) {
    if (n.opType !== 'Relu') continue;
    const p = index.producer.get(n.input[0]);
    if (!p || !chosen.has(p) || PASS_THROUGH.has(p.opType) || index.consumersOf(n.input[0]).length !== 1 || index.graphOutputs.has(n.input[0]) || index.graphOutputs.has(n.output[0])) continue;
    const r = opts.ranges.get(n.output[0]);
    if (!r || r.min < 0) continue;
    ed.removeNode(n);
    ed.setOutput(p, 0, n.output[0]);
    absorbed.push(nodeLabel(n));
  }
  index = new GraphIndex(ed.graph);
  if (swapFloatReluPool(ed, index, chosen)) index = new GraphIndex(ed.graph);

  // every float activation a chosen node reads or writes, graph outputs included as onnxruntime's
  // quantizer does: without the QuantizeLinear after it, onnxruntime leaves a final Gemm in float
  const order = index.order.filter((n) => chosen.has(n));
  const toQuantize = new Set<string>();
  for (const n of order) {
    for (const i of activationInputs(n, index)) if (i && !index.initializers.has(i)) toQuantize.add(i);
    toQuantize.add(n.output[0]);
  }

  // parameters: a pass-through op's output shares its input's, so onnxruntime can drop the pair around it
  const params = new Map<string, QParams>();
  const paramsOf = (t: string): QParams => {
    const known = params.get(t);
    if (known) return known;
    const p = index.producer.get(t);
    let q: QParams;
    if (p && chosen.has(p) && PASS_THROUGH.has(p.opType) && toQuantize.has(p.input[0])) q = paramsOf(p.input[0]);
    else {
      const r = opts.ranges.get(t);
      if (!r) throw new Error(`quantize: no calibrated range for tensor '${t}'`);
      q = activationParams(r, opts.activations);
    }
    params.set(t, q);
    return q;
  };

  // the activation each weighted node reads, by its name before the rewiring below (bias scales need it)
  const dataInput = new Map(order.map((n) => [n, activationInputs(n, index)[0]]));
  const readers = new Map([...toQuantize].map((t) => [t, index.consumersOf(t)]));
  const quantizedOutput = new Map<string, string>();
  const dequantized = new Map<string, string>();
  const zeroPointType = opts.activations === 'int8' ? DataType.INT8 : DataType.UINT8;
  for (const t of toQuantize) {
    const q = paramsOf(t);
    const scale = ed.addFloatInitializer(`${t}_scale`, [], Float32Array.of(q.scale));
    const zp = ed.addIntInitializer(`${t}_zero_point`, [], [q.zeroPoint], zeroPointType);
    if (ed.isGraphOutput(t)) {
      // the graph output keeps its name: the producer writes a new tensor, the DequantizeLinear writes the output
      ed.insertAfter(t, { name: `${t}_QuantizeLinear`, opType: 'QuantizeLinear', inputs: [t, scale, zp] }, `${t}_QuantizeLinear_Input`);
      const dq = ed.insertAfter(t, { name: `${t}_DequantizeLinear`, opType: 'DequantizeLinear', inputs: [t, scale, zp] }, `${t}_QuantizeLinear_Output`);
      quantizedOutput.set(t, dq.input[0]);
      continue;
    }
    const qOut = ed.fresh(`${t}_QuantizeLinear_Output`);
    const dqOut = ed.fresh(`${t}_DequantizeLinear_Output`);
    ed.addNode({ name: `${t}_QuantizeLinear`, opType: 'QuantizeLinear', inputs: [t, scale, zp], outputs: [qOut] });
    ed.addNode({ name: `${t}_DequantizeLinear`, opType: 'DequantizeLinear', inputs: [qOut, scale, zp], outputs: [dqOut] });
    quantizedOutput.set(t, qOut);
    dequantized.set(t, dqOut);
  }
  // every reader of a quantized tensor reads its dequantized copy, float nodes included: they see the
  // values the integer kernels see
  for (const [t, nodes] of readers) {
    const dq = dequantized.get(t);
    if (!dq) continue;
    for (const n of nodes) {
      for (let k = 0; k < n.input.length; k++) {
        if (n.input[k] !== t) continue;
        const channels = k === 0 && perChannel && opts.keepFloat.has(nodeLabel(n)) ? floatInputChannels(n, index) : undefined;
        if (channels === undefined) {
          ed.setInput(n, k, dq);
          continue;
        }
        // onnxruntime quantizes the weight of a float Conv/Gemm itself (per tensor) when a per-tensor
        // DequantizeLinear feeds it and a QuantizeLinear follows it; a per-channel DequantizeLinear with
        // the same scale in every channel computes the same values and keeps the layer float, as asked
        const q = paramsOf(t);
        const own = `${t}_DequantizeLinear_${nodeLabel(n).replace(/[^A-Za-z0-9_.]/g, '_')}`;
        const scale = ed.addFloatInitializer(`${own}_scale`, [channels], new Float32Array(channels).fill(q.scale));
        const zp = ed.addIntInitializer(`${own}_zero_point`, [channels], new Array<number>(channels).fill(q.zeroPoint), zeroPointType);
        const out = ed.fresh(`${own}_Output`);
        ed.addNode({ name: own, opType: 'DequantizeLinear', inputs: [quantizedOutput.get(t)!, scale, zp], outputs: [out], attrs: { axis: 1 } });
        ed.setInput(n, k, out);
      }
    }
  }

  // weights and biases
  const weightDq = new Map<string, string>();
  const chosenSet = new Set(order);
  for (const n of order) {
    if (!WEIGHTED.has(n.opType)) continue;
    const wName = n.opType === 'MatMul' ? n.input.find((i) => index.initializers.has(i)) : n.input[1];
    if (!wName) continue; // MatMul of two activations: both already quantized
    const w = index.initializers.get(wName)!;
    const dims = tensorDims(w);
    const axis = !perChannel ? -1 : n.opType === 'Conv' ? 0 : n.opType === 'Gemm' ? (attrInt(n, 'transB', 0) ? 0 : 1) : 1;
    const qw = quantizeWeight(tensorToFloat32(w), dims, axis, opts.weightBits);
    const key = `${wName}@${axis}`;
    let wOut = weightDq.get(key);
    if (!wOut) {
      // the int8 weight keeps the float weight's name (which it replaces) when only quantized nodes read
      // it in this layout, so sparsity and layer reports read the same tensor before and after
      const inPlace = index.consumersOf(wName).every((c) => chosenSet.has(c)) && ![...weightDq.keys()].some((k) => k.startsWith(`${wName}@`));
      const qName = inPlace ? wName : ed.addIntInitializer(`${wName}_quantized`, dims, qw.values, DataType.INT8);
      if (inPlace) ed.storeAsInteger(wName, qw.values, DataType.INT8);
      const perDims = axis < 0 ? [] : [qw.scales.length];
      const sName = ed.addFloatInitializer(`${wName}_scale`, perDims, qw.scales);
      const zName = ed.addIntInitializer(`${wName}_zero_point`, perDims, new Int8Array(qw.scales.length), DataType.INT8);
      wOut = ed.fresh(`${wName}_DequantizeLinear_Output`);
      ed.addNode({ name: `${wName}_DequantizeLinear`, opType: 'DequantizeLinear', inputs: [qName, sName, zName], outputs: [wOut], ...(axis < 0 ? {} : { attrs: { axis } }) });
      weightDq.set(key, wOut);
    }
    ed.setInput(n, n.input.indexOf(wName), wOut);
    const bName = n.opType === 'MatMul' ? undefined : n.input[2];
    const xName = dataInput.get(n)!;
    if (bName && toQuantize.has(xName)) {
      const b = index.initializers.get(bName)!;
      const qb = quantizeBias(tensorToFloat32(b), paramsOf(xName).scale, qw.scales);
      // per-tensor weights give one bias scale for every element
      const perDims = axis < 0 ? [] : [qb.values.length];
      const scales = axis < 0 ? qb.scales.subarray(0, 1) : qb.scales;
      const qName = ed.addIntInitializer(`${bName}_quantized`, tensorDims(b), qb.values, DataType.INT32);
      const sName = ed.addFloatInitializer(`${bName}_quantized_scale`, perDims, Float32Array.from(scales));
      const zName = ed.addIntInitializer(`${bName}_quantized_zero_point`, perDims, new Int32Array(scales.length), DataType.INT32);
      const bOut = ed.fresh(`${bName}_DequantizeLinear_Output`);
      ed.addNode({ name: `${bName}_DequantizeLinear`, opType: 'DequantizeLinear', inputs: [qName, sName, zName], outputs: [bOut], ...(axis < 0 ? {} : { attrs: { axis: 0 } }) });
      ed.setInput(n, 2, bOut);
    }
  }

  ed.setNodes(sortedNodes(ed.graph.node));
  // float weights and biases nothing reads any more
  ed.dropUnread(new Set(), { initializers: true });
  return { model: ed.model, quantized: order.map(nodeLabel), absorbed, tensors: [...toQuantize], perChannel };
}

/**
 * A float Relu -> MaxPool whose output integer layers read runs as MaxPool -> Relu (the two commute
 * exactly: both are monotone, and the pool's padding is below zero either way). onnxruntime moves a
 * QuantizeLinear up through a MaxPool, never through a Relu: in the original order the pool runs on
 * uint8 in plain NCHW; swapped, it runs in the float kernels' blocked layout and the QuantizeLinear
 * reads its smaller output. The pooled tensor keeps its name, and with it its calibrated range.
 */
function swapFloatReluPool(ed: ModelEditor, index: GraphIndex, chosen: ReadonlySet<NodeProto>): boolean {
  let swapped = false;
  for (const relu of index.order) {
    if (relu.opType !== 'Relu' || chosen.has(relu)) continue;
    const producer = index.producer.get(relu.input[0]);
    if (producer && chosen.has(producer)) continue;
    const readers = index.consumersOf(relu.output[0]);
    if (readers.length !== 1 || index.graphOutputs.has(relu.output[0])) continue;
    const pool = readers[0];
    if (pool.opType !== 'MaxPool' || chosen.has(pool) || pool.input[0] !== relu.output[0] || (pool.output.length > 1 && pool.output[1])) continue;
    if (!index.consumersOf(pool.output[0]).some((c) => chosen.has(c))) continue;
    const pooled = pool.output[0];
    const beforeRelu = ed.fresh(`${pooled}_before_Relu`);
    ed.setInput(pool, 0, relu.input[0]);
    ed.setOutput(pool, 0, beforeRelu);
    ed.setInput(relu, 0, beforeRelu);
    ed.setOutput(relu, 0, pooled);
    swapped = true;
  }
  return swapped;
}

/** Channels (axis 1) of the activation a float Conv/Gemm reads, from its weight; undefined for other nodes. */
function floatInputChannels(n: NodeProto, index: GraphIndex): number | undefined {
  const w = initializerFloat(index, n.input[1]);
  if (!w) return undefined;
  const dims = tensorDims(w);
  if (n.opType === 'Conv' && dims.length >= 3) return dims[1] * attrInt(n, 'group', 1);
  if (n.opType === 'Gemm' && dims.length === 2 && attrInt(n, 'transA', 0) === 0) return attrInt(n, 'transB', 0) ? dims[1] : dims[0];
  return undefined;
}
