import { GraphIndex, attrInt, attrInts, attrString, nodeLabel } from '../../onnx/graph.js';
import type { AttrValue } from '../../onnx/build.js';
import type { ModelProto } from '../../onnx/proto/onnx_pb.js';
import type { ProbeLayer } from '../../onnx/runtime/probe.js';
import { inferShapes } from '../../onnx/shapes.js';
import { numel } from '../../onnx/tensor.js';
import type { DependencyAnalysis } from './depgraph.js';

/**
 * A Conv, Gemm or MatMul layer as the latency model sees it: which dependency group sets its input
 * channels and which its output channels (one group, or none when the axis is fixed or fed by several
 * groups), its dense counts, and how to re-create it alone for a probe.
 */
export interface MacLayer {
  node: string;
  /** what it is, for grouping layers that behave alike: op, kernel, strides, depthwise, a narrow image input */
  kind: string;
  probe: ProbeLayer;
  cin: number;
  cout: number;
  inRoot?: number;
  outRoot?: number;
  /** every group among the input (fan-in) channels: several after a Concat; widths apply to each */
  inRoots: number[];
  outRoots: number[];
  macs: number;
}

function roots(analysis: DependencyAnalysis, layout: { space: number }[] | undefined): number[] {
  return layout ? [...new Set(layout.map((s) => analysis.spaces.root(s.space)))] : [];
}

/** The one group a layout's channels belong to, if it is a single group. */
function singleRoot(analysis: DependencyAnalysis, layout: { space: number }[]): number | undefined {
  const r = roots(analysis, layout);
  return r.length === 1 ? r[0] : undefined;
}

/** Every MAC layer of `model` (the untied model the analysis ran on) with its groups. */
export function macLayers(model: ModelProto, analysis: DependencyAnalysis): MacLayer[] {
  const index = new GraphIndex(model.graph!);
  const { shapes } = inferShapes(index, 1);
  const nodes = model.graph!.node;
  const layers: MacLayer[] = [];
  nodes.forEach((node, i) => {
    if (node.opType !== 'Conv' && node.opType !== 'Gemm' && node.opType !== 'MatMul') return;
    const uses = analysis.uses.filter((u) => u.node === i && node.input.indexOf(u.tensor) >= 0);
    // a MatMul of two activations (attention scores) has no weight; one with the weight on the left is not modelled
    if (node.opType === 'MatMul' && (uses.length === 0 || index.constant(node.input[0]))) return;
    const weightUse = uses.find((u) => u.role === 'param' && u.tensor === node.input[1]) ?? uses.find((u) => u.role === 'param');
    const faninUse = uses.find((u) => u.role === 'fanin');
    const x = shapes.get(node.input[0]);
    const y = shapes.get(node.output[0]);
    if (!x || !y) return;
    const group = attrInt(node, 'group', 1);
    const depthwise = node.opType === 'Conv' && group > 1 && group === x[1] && group === y[1];
    if (node.opType === 'Conv' && group > 1 && !depthwise) return;
    if (node.opType === 'Gemm' && attrInt(node, 'transA', 0)) return;
    const cin = node.opType === 'Conv' ? x[1] : x[x.length - 1];
    const cout = node.opType === 'Conv' ? y[1] : y[y.length - 1];
    const inRoot = faninUse ? singleRoot(analysis, faninUse.layout) : depthwise && weightUse ? singleRoot(analysis, weightUse.layout) : undefined;
    const outRoot = weightUse ? singleRoot(analysis, weightUse.layout) : undefined;
    let probe: ProbeLayer;
    let kind: string;
    if (node.opType === 'Conv') {
      const kernel = attrInts(node, 'kernel_shape') ?? [];
      const attrs: Record<string, AttrValue> = { kernel_shape: kernel };
      for (const name of ['strides', 'dilations', 'pads'] as const) {
        const v = attrInts(node, name);
        if (v) attrs[name] = v;
      }
      const autoPad = attrString(node, 'auto_pad', 'NOTSET');
      if (autoPad !== 'NOTSET') attrs.auto_pad = autoPad;
      const spatial = x.slice(2);
      probe = { opType: 'Conv', depthwise, spatial, rows: 1, attrs };
      const strides = attrInts(node, 'strides') ?? kernel.map(() => 1);
      kind = `Conv ${kernel.join('x')}${strides.some((s) => s !== 1) ? ` stride ${strides.join('x')}` : ''}${depthwise ? ' depthwise' : ''}${cin < 8 && !depthwise ? ` from ${cin} channels` : ''}`;
    } else {
      const rows = node.opType === 'MatMul' ? numel(x.slice(1, -1)) : 1;
      probe = { opType: node.opType, depthwise: false, spatial: [], rows, attrs: node.opType === 'Gemm' ? { transB: attrInt(node, 'transB', 0) } : {} };
      kind = `${node.opType}${rows > 1 ? ' over rows' : ''}`;
    }
    const macs = numel(y) * (node.opType === 'Conv' ? (depthwise ? 1 : cin) * numel(attrInts(node, 'kernel_shape') ?? []) : cin);
    const inRoots = roots(analysis, faninUse?.layout ?? (depthwise ? weightUse?.layout : undefined));
    const outRoots = depthwise ? inRoots : roots(analysis, weightUse?.layout);
    layers.push({ node: nodeLabel(node), kind, probe, cin, cout, inRoot, outRoot: depthwise ? inRoot : outRoot, inRoots, outRoots, macs });
  });
  return layers;
}
