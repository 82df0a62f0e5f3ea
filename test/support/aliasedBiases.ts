import { loadDataset } from '../../src/data/dataset.js';
import { ModelEditor } from '../../src/onnx/edit.js';
import { cloneModel } from '../../src/onnx/model.js';
import type { ModelProto, NodeProto } from '../../src/onnx/proto/onnx_pb.js';
import { evaluateClassifier } from '../../src/onnx/runtime/classifier.js';
import { sessionFromModel } from '../../src/onnx/runtime/session.js';
import { modelInputs } from '../../src/onnx/signature.js';
import { foldBatchNorms } from '../../src/quantize/foldBatchNorm.js';
import { fixture } from './fixtures.js';
import { firstSamples } from './slice.js';

/**
 * The fixture CNN as an exporter that deduplicates constants writes it: BatchNorms folded into the Convs,
 * and every Conv reading its bias through an Identity of the initializer.
 */
export function aliasConvBiases(model: ModelProto): ModelProto {
  const ed = new ModelEditor(cloneModel(foldBatchNorms(model).model));
  for (const conv of ed.graph.node.filter((n) => n.opType === 'Conv' && n.input[2])) aliasInput(ed, conv, 2);
  return ed.model;
}

/** Make `node` read its input `i` (an initializer) through a new Identity, as deduplicating exporters do; returns the alias. */
export function aliasInput(ed: ModelEditor, node: NodeProto, i: number): string {
  const alias = ed.fresh(`${node.input[i]}_alias`);
  ed.addNode({ opType: 'Identity', inputs: [node.input[i]], outputs: [alias] });
  // it reads only an initializer: first in the graph keeps the order topological
  ed.graph.node.unshift(ed.graph.node.pop()!);
  ed.setInput(node, i, alias);
  return alias;
}

/** The model's predictions and their confidences on the first 16 evaluation samples, for exact comparisons. */
export async function firstPredictions(model: ModelProto): Promise<number[]> {
  const data = loadDataset(firstSamples(fixture('fmnist-test.npz'), 16), modelInputs(model, 'model'), { requireLabels: false });
  const s = await sessionFromModel(model, 1);
  try {
    const p = await evaluateClassifier(s, data, { batchSize: 16, modelPath: 'model', unlabelled: true });
    return [...p.pred, ...p.confidence];
  } finally {
    await s.release();
  }
}
