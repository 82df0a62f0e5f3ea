/**
 * Checks of an input model that run before anything is pruned or written, so a model prune-guard
 * cannot handle is refused in one line naming the op, domain or tensor, instead of failing half-way.
 */
import { UserError } from '../errors.js';
import { GraphIndex } from './graph.js';
import type { GraphProto, ModelProto, NodeProto, TensorProto } from './proto/onnx_pb.js';
import { DataType as DT, FLOAT_TYPES, numel, tensorDims, tensorToFloat32 } from './tensor.js';

/** Highest ai.onnx opset onnxruntime-node 1.30 officially supports (its own load error says "till opset 26"). */
export const MAX_ONNX_OPSET = 26;

/** Operator domains onnxruntime's CPU build implements; anything else is a custom op library. */
const RUNTIME_DOMAINS = new Set(['', 'ai.onnx', 'ai.onnx.ml', 'com.microsoft', 'com.microsoft.nchwc', 'ai.onnx.preview.training', 'ai.onnx.training']);

// subgraphs (If/Loop/Scan bodies) nest; real models nest a few levels, a hostile one can nest as deep as
// the protobuf decoder allows (100 messages, ~33 subgraphs), so walking stops here
const MAX_SUBGRAPH_DEPTH = 16;

function* allNodes(graph: GraphProto, file: string, depth = 0): Generator<NodeProto> {
  if (depth > MAX_SUBGRAPH_DEPTH) {
    throw new UserError(`${file}: subgraphs nest more than ${MAX_SUBGRAPH_DEPTH} levels deep; the file is corrupt or hostile, re-export the model`);
  }
  for (const n of graph.node) {
    yield n;
    for (const a of n.attribute) {
      if (a.g) yield* allNodes(a.g, file, depth + 1);
      for (const g of a.graphs) yield* allNodes(g, file, depth + 1);
    }
  }
}

function listNames(names: Iterable<string>, max = 5): string {
  const all = [...new Set(names)];
  const shown = all.slice(0, max).map((n) => `'${n}'`).join(', ');
  return all.length > max ? `${shown} and ${all.length - max} more` : shown;
}

/** Opsets and operator domains onnxruntime can run. Unknown ops in the standard domain are left to onnxruntime's own check. */
export function checkRuntimeSupport(model: ModelProto, file: string): void {
  for (const o of model.opsetImport) {
    const domain = o.domain || 'ai.onnx';
    if ((o.domain === '' || o.domain === 'ai.onnx') && Number(o.version) > MAX_ONNX_OPSET) {
      throw new UserError(
        `${file}: uses opset ${o.version} of ${domain}, newer than onnxruntime-node 1.30 supports (up to ${MAX_ONNX_OPSET}); re-export with opset_version=${MAX_ONNX_OPSET} or lower`,
      );
    }
  }
  const custom = new Map<string, string[]>();
  for (const n of allNodes(model.graph!, file)) {
    if (RUNTIME_DOMAINS.has(n.domain)) continue;
    const ops = custom.get(n.domain) ?? [];
    ops.push(n.opType);
    custom.set(n.domain, ops);
  }
  if (custom.size > 0) {
    const [domain, ops] = [...custom][0];
    throw new UserError(
      `${file}: uses custom op${new Set(ops).size > 1 ? 's' : ''} ${listNames(ops)} from domain '${domain}'${custom.size > 1 ? ` (and domains ${listNames([...custom.keys()].slice(1))})` : ''}, which onnxruntime-node cannot run without its custom-op library; export the model with standard ONNX ops`,
    );
  }
}

/** The weight operands of the ops magnitude pruning reads (where Inf would make thresholds meaningless). */
function weightNames(model: ModelProto): Set<string> {
  const index = new GraphIndex(model.graph!);
  const names = new Set<string>();
  for (const n of model.graph!.node) {
    if (n.opType === 'Conv' || n.opType === 'ConvTranspose' || n.opType === 'Gemm') names.add(n.input[1]);
    if (n.opType === 'MatMul') for (const i of n.input) if (index.initializers.has(i)) names.add(i);
  }
  return names;
}

function floatValues(t: TensorProto, file: string): Float32Array {
  // float32 raw data aligned in the file buffer is scanned in place: no copy of the model's weights
  const raw = t.rawData;
  if (t.dataType === DT.FLOAT && raw.byteOffset % 4 === 0 && raw.byteLength > 0 && raw.byteLength === numel(tensorDims(t)) * 4) {
    return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  }
  try {
    return tensorToFloat32(t);
  } catch (e) {
    throw new UserError(`${file}: initializer '${t.name}' is malformed (${(e as Error).message}); the file is corrupt, re-export the model`);
  }
}

/**
 * NaN in any float initializer, or ±Inf in a Conv/Gemm/MatMul weight, is refused: pruning by magnitude
 * and every accuracy number would be meaningless. (Inf elsewhere, e.g. an attention mask, is legitimate.)
 */
export function checkFiniteWeights(model: ModelProto, file: string): void {
  const weights = weightNames(model);
  for (const t of model.graph!.initializer) {
    if (!FLOAT_TYPES.has(t.dataType)) continue;
    const v = floatValues(t, file);
    const isWeight = weights.has(t.name);
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (x - x !== 0) {
        // x - x is NaN for NaN and ±Inf, 0 for every finite value
        if (Number.isNaN(x)) {
          throw new UserError(`${file}: initializer '${t.name}' holds NaN at flat index ${i}; the model is broken (diverged training or a bad export), fix it before pruning`);
        }
        if (isWeight) {
          throw new UserError(`${file}: weight '${t.name}' holds ${x > 0 ? '+' : '-'}Inf at flat index ${i}; the model is broken (diverged training or a bad export), fix it before pruning`);
        }
      }
    }
  }
}

/**
 * Every tensor has one writer: a node output, a graph input or an initializer. A second writer makes the
 * graph's meaning depend on node order (onnxruntime refuses it), and every pass would follow one of the
 * two at random; a loop of nodes has no order to run in. Both are named here, before any pass looks.
 */
export function checkSingleProducers(graph: GraphProto, file: string): void {
  const writer = new Map<string, string>();
  const claim = (tensor: string, by: string) => {
    if (!tensor) return;
    const first = writer.get(tensor);
    if (first !== undefined) {
      throw new UserError(`${file}: tensor '${tensor}' has two producers (${first} and ${by}); each tensor must be written once, fix the export`);
    }
    writer.set(tensor, by);
  };
  const inits = new Set(graph.initializer.map((t) => t.name));
  for (const i of graph.input) if (!inits.has(i.name)) claim(i.name, `graph input '${i.name}'`);
  for (const t of graph.initializer) claim(t.name, `initializer '${t.name}'`);
  graph.node.forEach((n, k) => {
    for (const o of n.output) claim(o, `node '${n.name || `#${k}`}' (${n.opType})`);
  });
  try {
    new GraphIndex(graph);
  } catch {
    throw new UserError(`${file}: the graph has a cycle (a node reads, through other nodes, its own output); fix the export`);
  }
}

/** Everything above, in the order a user would want to hear it. */
export function preflightModel(model: ModelProto, file: string): void {
  checkSingleProducers(model.graph!, file);
  checkRuntimeSupport(model, file);
  checkFiniteWeights(model, file);
}
