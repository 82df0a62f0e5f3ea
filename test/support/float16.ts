import { ModelEditor } from '../../src/onnx/edit.js';
import type { ModelProto } from '../../src/onnx/proto/onnx_pb.js';
import { DataType, setTensorFloat32, tensorToFloat32 } from '../../src/onnx/tensor.js';

/**
 * The model as a float16 export writes it (fixtures/make_export_fixtures.py cast_float): every float32
 * initializer, Constant, Cast target, input, output and declaration in float16.
 */
export function asFloat16(model: ModelProto): ModelProto {
  const ed = ModelEditor.copyOf(model);
  for (const t of [...ed.graph.initializer]) if (t.dataType === DataType.FLOAT) ed.retypeInitializer(t.name, tensorToFloat32(t), DataType.FLOAT16);
  for (const n of ed.graph.node) {
    for (const a of n.attribute) {
      if (a.t?.dataType === DataType.FLOAT) {
        const values = tensorToFloat32(a.t);
        a.t.dataType = DataType.FLOAT16;
        setTensorFloat32(a.t, values);
      }
      if (n.opType === 'Cast' && a.name === 'to' && Number(a.i) === DataType.FLOAT) a.i = BigInt(DataType.FLOAT16);
    }
  }
  for (const v of [...ed.graph.input, ...ed.graph.output, ...ed.graph.valueInfo]) {
    if (v.type?.value.case === 'tensorType' && v.type.value.value.elemType === DataType.FLOAT) v.type.value.value.elemType = DataType.FLOAT16;
  }
  return ed.model;
}
