import { attr, attrInt, type GraphIndex } from './graph.js';
import { DataType as DT } from './tensor.js';
import type { ValueInfoProto } from './proto/onnx_pb.js';

/** Ops whose outputs are booleans whatever their inputs. */
const BOOLEAN = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf']);
/** Ops whose (first) output is int64 indices or sizes. */
const INDICES = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero']);

function declared(v: ValueInfoProto | undefined): number | undefined {
  const t = v?.type?.value;
  return t?.case === 'tensorType' && t.value.elemType ? t.value.elemType : undefined;
}

/**
 * The ONNX element type of every tensor that can be told from the graph: declared inputs, initializers
 * and constants, then node by node (Cast says its type, comparisons give bool, shape ops int64, most ops
 * keep their data input's type). Nodes prune-guard adds to a model (captures, scaling) must speak the
 * type of the tensor they touch: a float16 model's activations are float16.
 */
export function elementTypes(index: GraphIndex): Map<string, number> {
  const types = new Map<string, number>();
  for (const v of index.graph.input) {
    const t = declared(v);
    if (t) types.set(v.name, t);
  }
  for (const [name, t] of index.initializers) types.set(name, t.dataType);
  for (const node of index.order) {
    const first = node.input.find((i) => i && types.has(i));
    const inputType = first ? types.get(first) : undefined;
    node.output.forEach((o, k) => {
      if (!o) return;
      let t: number | undefined;
      if (node.opType === 'Constant') t = attr(node, 'value')?.t?.dataType;
      else if (node.opType === 'Cast') t = attrInt(node, 'to', 0) || undefined;
      else if (node.opType === 'CastLike') t = types.get(node.input[1]);
      else if (node.opType === 'ConstantOfShape') t = attr(node, 'value')?.t?.dataType ?? DT.FLOAT;
      else if (BOOLEAN.has(node.opType)) t = DT.BOOL;
      else if (INDICES.has(node.opType)) t = DT.INT64;
      else if ((node.opType === 'MaxPool' || node.opType === 'TopK') && k === 1) t = DT.INT64;
      else if (node.opType === 'Where') t = types.get(node.input[1]) ?? types.get(node.input[2]);
      else t = inputType;
      t = declared(index.valueInfo.get(o)) ?? t;
      if (t) types.set(o, t);
    });
  }
  return types;
}
