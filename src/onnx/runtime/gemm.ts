import { create } from '@bufbuild/protobuf';
import { serializeModel } from '../model.js';
import { makeNode, valueInfo } from '../build.js';
import { ModelProtoSchema, type ModelProto } from '../proto/onnx_pb.js';
import { onnxruntime, type OrtSession } from './ort.js';

const gemmSessions = new Map<string, Promise<OrtSession>>();

/** Tiny one-Gemm graph (A^T B or A B^T), so matrix products run in onnxruntime's MLAS. */
function gemmModel(trans: 'transA' | 'transB'): Uint8Array {
  return serializeModel(buildGemmProto(trans));
}

async function gemm(trans: 'transA' | 'transB', a: Float32Array, aDims: number[], b: Float32Array, bDims: number[]): Promise<Float64Array> {
  const { ort } = onnxruntime();
  let session = gemmSessions.get(trans);
  if (!session) {
    session = ort.InferenceSession.create(gemmModel(trans), { executionProviders: ['cpu'], intraOpNumThreads: 0 });
    gemmSessions.set(trans, session);
  }
  const s = await session;
  const result = await s.run({ A: new ort.Tensor('float32', a, aDims), B: new ort.Tensor('float32', b, bDims) });
  const out = Float64Array.from(result.G.data as Float32Array);
  result.G.dispose();
  return out;
}

/** A B^T for A [m, k], B [n, k] (row-major): a layer's outputs from patches A and weight rows B. */
export function timesTransposed(a: Float32Array, m: number, b: Float32Array, n: number, k: number): Promise<Float64Array> {
  return gemm('transB', a, [m, k], b, [n, k]);
}

function buildGemmProto(trans: 'transA' | 'transB'): ModelProto {
  return create(ModelProtoSchema, {
    irVersion: 8n,
    opsetImport: [{ domain: '', version: 13n }],
    graph: {
      name: 'gram',
      input: [valueInfo('A'), valueInfo('B')],
      output: [valueInfo('G')],
      // Gemm reads the transposed operand in place instead of materialising it
      node: [makeNode('gemm', { opType: 'Gemm', inputs: ['A', 'B'], outputs: ['G'], attrs: { [trans]: 1 } })],
    },
  });
}

/** A^T B in float32 via onnxruntime, widened to float64: A is [n, p], B is [n, q] (row-major). */
export function crossGram(a: Float32Array, b: Float32Array, n: number, p: number, q: number): Promise<Float64Array> {
  return gemm('transA', a, [n, p], b, [n, q]);
}
