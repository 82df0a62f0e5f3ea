/**
 * A stand-in for a user's fine-tuning script, run by prune-guard as `--recovery-command`: reads
 * $PRUNE_GUARD_MODEL_IN and the masks, changes weights as told by argv[2], writes $PRUNE_GUARD_MODEL_OUT.
 *   scale   - multiply every surviving weight by 1.01 (a legal recovery)
 *   revive  - set pruned weights of the first masked tensor to 0.01 (breaks the masks)
 *   reshape - drop the last row of the first masked tensor (breaks the shapes)
 *   nothing - exit 0 without writing a model
 *   fail    - exit 3
 */
import { readNpz } from '../../../src/data/npz.js';
import { GraphIndex } from '../../../src/onnx/graph.js';
import { loadModel, saveModel } from '../../../src/onnx/model.js';
import { setTensorFloat32, tensorDims, tensorToFloat32 } from '../../../src/onnx/tensor.js';

const mode = process.argv[2];
if (mode === 'fail') {
  console.error('rewrite: failing on purpose');
  process.exit(3);
}
if (mode === 'nothing') process.exit(0);
for (const v of ['PRUNE_GUARD_MODEL_IN', 'PRUNE_GUARD_MODEL_OUT', 'PRUNE_GUARD_MASKS', 'PRUNE_GUARD_CALIB', 'PRUNE_GUARD_DATA']) {
  if (process.env[v] === undefined) throw new Error(`${v} not set`);
}
const model = loadModel(process.env.PRUNE_GUARD_MODEL_IN!).proto;
const masks = readNpz(process.env.PRUNE_GUARD_MASKS!);
const index = new GraphIndex(model.graph!);
let first = true;
for (const [name, mask] of masks) {
  const t = index.initializers.get(name)!;
  const v = tensorToFloat32(t);
  if (mode === 'scale') for (let i = 0; i < v.length; i++) v[i] = mask.data[i] ? v[i] * 1.01 : 0;
  if (mode === 'revive' && first) for (let i = 0; i < v.length; i++) if (!mask.data[i]) v[i] = 0.01;
  if (mode === 'reshape' && first) {
    const dims = tensorDims(t);
    const rows = dims[0] - 1;
    setTensorFloat32(t, v.subarray(0, (v.length / dims[0]) * rows), [rows, ...dims.slice(1)]);
  } else setTensorFloat32(t, v);
  first = false;
}
saveModel(model, process.env.PRUNE_GUARD_MODEL_OUT!);
console.log(`rewrite: ${mode} done`);
