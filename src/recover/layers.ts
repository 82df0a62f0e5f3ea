import type { NodeProto } from '../onnx/proto/onnx_pb.js';
import { attrFloat, attrInt, attrInts, attrString, GraphIndex, nodeLabel } from '../onnx/graph.js';
import { FLOAT_TYPES, tensorDims } from '../onnx/tensor.js';
import { inferShapes } from '../onnx/shapes.js';

/**
 * A layer whose weights reconstruction can refit: a linear map y = W x (+ b) applied to patches of
 * its input activation. Conv weights [O, C/g, kh, kw] are g independent row blocks; dense layers
 * (Gemm, MatMul with a constant right operand) are one block of [outputs x inputs].
 */
export interface LinearLayer {
  node: string;
  opType: 'Conv' | 'Gemm' | 'MatMul';
  weight: string;
  /** the activation the layer reads */
  input: string;
  groups: number;
  /** output rows per group */
  rows: number;
  /** weight columns per group (without the bias column) */
  cols: number;
  /** weight stored as [inputs, outputs] (Gemm transB=0, MatMul): rows and columns are swapped on disk */
  transposed: boolean;
  /** the bias initializer, or null when the node has none */
  bias: string | null;
  /** whether a bias may be refit (or added): Conv always, Gemm when alpha = beta = 1 and C is 1-D */
  biasRefit: boolean;
  conv?: ConvGeometry;
}

export interface ConvGeometry {
  kernel: [number, number];
  strides: [number, number];
  /** top, left, bottom, right */
  pads: [number, number, number, number];
  dilations: [number, number];
}

function convGeometry(node: NodeProto, dims: number[], inputShape: () => number[] | undefined): ConvGeometry | string {
  if (dims.length !== 4) return `${dims.length - 2}-D convolution`;
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const s = attrInts(node, 'strides') ?? [1, 1];
  const d = attrInts(node, 'dilations') ?? [1, 1];
  const kernel: [number, number] = [dims[2], dims[3]];
  let p = attrInts(node, 'pads') ?? [0, 0, 0, 0];
  if (autoPad === 'VALID') p = [0, 0, 0, 0];
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    // the pads the exporter left to the runtime, as ONNX defines them: output = ceil(input / stride)
    const x = inputShape();
    if (!x || x.length !== 4) return `auto_pad=${autoPad} on an input of unknown shape`;
    p = [0, 0, 0, 0];
    for (let i = 0; i < 2; i++) {
      const total = Math.max(0, (Math.ceil(x[2 + i] / s[i]) - 1) * s[i] + (kernel[i] - 1) * d[i] + 1 - x[2 + i]);
      const small = Math.floor(total / 2);
      p[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      p[2 + i] = total - p[i];
    }
  } else if (autoPad !== 'NOTSET') return `auto_pad=${autoPad}`;
  return { kernel, strides: [s[0], s[1]], pads: [p[0], p[1], p[2], p[3]], dilations: [d[0], d[1]] };
}

/** The refittable layer behind a weight initializer, or a reason it cannot be refit. */
export function linearLayer(index: GraphIndex, weight: string): LinearLayer | string {
  const consumers = index.consumersOf(weight);
  if (consumers.length !== 1) return `weight is used by ${consumers.length} nodes`;
  const node = consumers[0];
  const t = index.initializers.get(weight);
  if (!t || !FLOAT_TYPES.has(t.dataType)) return 'not a float initializer';
  const dims = tensorDims(t);
  const label = nodeLabel(node);
  switch (node.opType) {
    case 'Conv': {
      if (node.input[1] !== weight) return 'weight is not the Conv kernel';
      const geo = convGeometry(node, dims, () => inferShapes(index, 1).shapes.get(node.input[0]));
      if (typeof geo === 'string') return geo;
      const groups = attrInt(node, 'group', 1);
      const bias = node.input[2] || null;
      return { node: label, opType: 'Conv', weight, input: node.input[0], groups, rows: dims[0] / groups, cols: dims[1] * dims[2] * dims[3], transposed: false, bias, biasRefit: bias === null || index.initializers.has(bias), conv: geo };
    }
    case 'Gemm': {
      if (node.input[1] !== weight || dims.length !== 2) return 'weight is not the Gemm B matrix';
      if (attrInt(node, 'transA', 0) !== 0) return 'Gemm with transA=1';
      const transposed = attrInt(node, 'transB', 0) === 0;
      const [rows, cols] = transposed ? [dims[1], dims[0]] : [dims[0], dims[1]];
      const bias = node.input[2] || null;
      const biasT = bias ? index.initializers.get(bias) : undefined;
      const unitScale = attrFloat(node, 'alpha', 1) === 1 && attrFloat(node, 'beta', 1) === 1;
      const biasRefit = unitScale && (bias === null || (biasT !== undefined && tensorDims(biasT).length === 1 && tensorDims(biasT)[0] === rows));
      return { node: label, opType: 'Gemm', weight, input: node.input[0], groups: 1, rows, cols, transposed, bias, biasRefit };
    }
    case 'MatMul': {
      if (node.input[1] !== weight || dims.length !== 2) return 'weight is the left MatMul operand';
      const bias = matMulBias(index, node, dims[1]);
      return { node: label, opType: 'MatMul', weight, input: node.input[0], groups: 1, rows: dims[1], cols: dims[0], transposed: true, bias, biasRefit: bias !== null };
    }
    default:
      return `${node.opType} layers are not refit`;
  }
}

/**
 * The bias of a MatMul exported as MatMul + Add (torch's Linear on 3-D inputs): the Add's 1-D float
 * initializer of `rows` entries, when the Add is the MatMul's only reader and nothing else reads the
 * bias, so refitting it changes this layer alone.
 */
function matMulBias(index: GraphIndex, node: NodeProto, rows: number): string | null {
  const readers = index.consumersOf(node.output[0]);
  if (readers.length !== 1 || readers[0].opType !== 'Add') return null;
  const add = readers[0];
  const other = add.input[0] === node.output[0] ? add.input[1] : add.input[0];
  const t = index.initializers.get(other);
  if (!t || !FLOAT_TYPES.has(t.dataType) || index.consumersOf(other).length !== 1) return null;
  const d = tensorDims(t);
  return d.length === 1 && d[0] === rows ? other : null;
}

/** Group `g` of the weights as a row-major [rows x cols] float64 matrix. */
export function weightRows(layer: LinearLayer, values: Float32Array, g: number): Float64Array {
  const { rows, cols } = layer;
  const out = new Float64Array(rows * cols);
  if (layer.transposed) {
    for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) out[r * cols + c] = values[c * rows + r];
  } else {
    out.set(values.subarray(g * rows * cols, (g + 1) * rows * cols));
  }
  return out;
}

/** Write a [rows x cols] matrix back into group `g` of the stored weights. */
export function setWeightRows(layer: LinearLayer, values: Float32Array, g: number, w: Float64Array): void {
  const { rows, cols } = layer;
  if (layer.transposed) {
    for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) values[c * rows + r] = w[r * cols + c];
  } else {
    values.set(w, g * rows * cols);
  }
}
