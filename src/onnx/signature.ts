import { UserError } from '../errors.js';
import type { ModelProto, ValueInfoProto } from './proto/onnx_pb.js';
import { GraphIndex } from './graph.js';
import { DataType as DT, dataTypeName } from './tensor.js';

/** The element types an evaluation set can feed, named as NumPy names them. */
export type ElementType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'bool';

const NUMPY_NAME: Partial<Record<number, ElementType>> = {
  [DT.FLOAT]: 'float32', [DT.DOUBLE]: 'float64', [DT.FLOAT16]: 'float16', [DT.INT64]: 'int64', [DT.INT32]: 'int32',
  [DT.INT16]: 'int16', [DT.INT8]: 'int8', [DT.UINT8]: 'uint8', [DT.UINT16]: 'uint16', [DT.UINT32]: 'uint32',
  [DT.UINT64]: 'uint64', [DT.BOOL]: 'bool',
};

export interface TensorSignature {
  name: string;
  dtype: ElementType;
  /** numbers for fixed dims, the symbol (or null) for free ones such as the batch */
  dims: (number | string | null)[];
}

function signature(v: ValueInfoProto, file: string): TensorSignature {
  const t = v.type?.value;
  if (!t || t.case !== 'tensorType') throw new UserError(`${file}: '${v.name}' is not a tensor; prune-guard evaluates models whose inputs and outputs are tensors`);
  const dtype = NUMPY_NAME[t.value.elemType];
  if (!dtype) throw new UserError(`${file}: '${v.name}' has element type ${dataTypeName(t.value.elemType)}, which prune-guard cannot feed`);
  const dims = (t.value.shape?.dim ?? []).map((d) =>
    d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : null,
  );
  return { name: v.name, dtype, dims };
}

/** The model's real inputs (initializers listed as inputs by older exporters are not inputs to feed). */
export function modelInputs(model: ModelProto, file: string): TensorSignature[] {
  return new GraphIndex(model.graph!).inputs.map((v) => signature(v, file));
}

export function modelOutputs(model: ModelProto, file: string): TensorSignature[] {
  return model.graph!.output.map((v) => signature(v, file));
}

/**
 * The batch the model's inputs are fixed at (a number as their first dimension, as exports without
 * dynamic axes have), or undefined when the batch is free. Inputs that fix different batches cannot be
 * fed together: refused.
 */
export function fixedBatch(inputs: readonly TensorSignature[], file: string): number | undefined {
  const fixed = inputs.filter((s) => typeof s.dims[0] === 'number' && (s.dims[0] as number) > 0);
  const sizes = [...new Set(fixed.map((s) => s.dims[0] as number))];
  if (sizes.length > 1) {
    throw new UserError(`${file}: inputs fix different batch sizes (${fixed.map((s) => `${s.name}: ${s.dims[0]}`).join(', ')}); prune-guard feeds every input the same samples, so re-export with one batch size (or dynamic axes)`);
  }
  return sizes[0];
}
