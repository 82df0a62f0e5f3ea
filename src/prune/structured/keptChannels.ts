import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import { tensorDims } from '../../onnx/tensor.js';
import type { DependencyAnalysis } from './depgraph.js';
import { type KeepMap, keptIndices } from './layout.js';

/**
 * Which dense entries survive structured surgery: per sliced initializer, per sliced axis, the dense
 * indices kept, in the order the pruned tensor holds them. Slicing the dense tensor along every listed
 * axis by its indices gives the pruned tensor exactly; axes and tensors not listed are unchanged.
 * Recovery needs it to compare a layer whose output channels were removed with the dense layer's
 * output at the channels that remain.
 */
export type KeptChannels = ReadonlyMap<string, ReadonlyMap<number, Int32Array>>;

/** The kept-channel map of `removeChannels(model, analysis, keep)`, from the same inputs. */
export function keptChannels(model: ModelProto, analysis: DependencyAnalysis, keep: KeepMap): KeptChannels {
  const dims = new Map(model.graph!.initializer.map((t) => [t.name, tensorDims(t)]));
  const out = new Map<string, Map<number, Int32Array>>();
  for (const use of analysis.uses) {
    const d = dims.get(use.tensor);
    // Constant nodes (shape arithmetic, rare weights) are not what recovery refits
    if (!d) continue;
    let axes = out.get(use.tensor);
    // a shared constant is sliced once per axis, by the first use registered (as surgery does)
    if (axes?.has(use.axis)) continue;
    const idx = keptIndices(use.layout, analysis.spaces, keep);
    if (idx.length === d[use.axis]) continue;
    if (!axes) out.set(use.tensor, (axes = new Map()));
    axes.set(use.axis, Int32Array.from(idx));
  }
  return out;
}
