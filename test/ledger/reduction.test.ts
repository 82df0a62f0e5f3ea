import { describe, expect, it } from 'vitest';
import { BUDGETS } from '../../src/config/budgets.js';
import { evaluateBudgets, type ResolvedBudget } from '../../src/ledger/budgets.js';
import { buildReduction, fromTally } from '../../src/ledger/reduction.js';
import type { BudgetResult, Reduction } from '../../src/ledger/types.js';
import { loadModel } from '../../src/onnx/model.js';
import { modelCost } from '../../src/onnx/flops.js';
import { structuredPrune } from '../../src/prune/structured/structuredPrune.js';
import { fixture } from '../support/fixtures.js';
import { step } from './fixtures.js';

const BUDGET: ResolvedBudget = { name: 'target-reduction', limit: BUDGETS['target-reduction'].default!, direction: 'min', source: 'default' };

/** Structured pruning at 0.3 of a fixture, its reduction measured on the two graphs, judged by the budget. */
async function judged(name: string, strict = false): Promise<{ reduction: Reduction; result: BudgetResult }> {
  const { proto } = loadModel(fixture(name));
  const r = await structuredPrune(proto, { sparsity: 0.3, scope: 'global', roundTo: 1, criterion: 'l1', protectedTensors: new Set() });
  const a = modelCost(proto);
  const b = modelCost(r.model);
  const dense = step({ params: a.params, nonzero_params: a.nonzeroParams, flops: a.macs, sparsity: 0 });
  const pruned = step({ name: 'prune', params: b.params, nonzero_params: b.nonzeroParams, flops: b.macs, sparsity: 1 - b.params / a.params });
  const reduction = buildReduction(dense, pruned, { unit: 'channels', requested: 0.3 }, fromTally(r.tally));
  const [result] = evaluateBudgets([BUDGET], { dense, final: pruned, reduction }, { strict });
  return { reduction, result };
}

describe('target-reduction: a run says when it could not do what was asked', () => {
  it('passes when the channels asked for were removed (cnn-bn: only the classifier, the output, stays whole)', async () => {
    const { reduction, result } = await judged('cnn-bn.onnx');
    expect(reduction.achieved.channels).toBeCloseTo(0.3, 1);
    expect(reduction.achieved.params).toBeGreaterThan(0.3);
    expect(reduction.achieved.macs).toBeGreaterThan(0.3);
    expect(reduction.skipped.map((s) => s.reason.kind)).toEqual(['graph-output']);
    expect(result.verdict).toBe('pass');
  });

  it('warns below three quarters of the target, naming what held it back (a Flatten the analysis cannot follow)', async () => {
    const { reduction, result } = await judged('structured/matmul-layouts.onnx');
    expect(reduction.met).toBeGreaterThan(0);
    expect(reduction.met).toBeLessThan(0.75);
    expect(result.verdict).toBe('warn');
    expect(result.detail).toMatch(/of channels removed where 30\.0% was asked; left whole .*24 channels for unsupported/);
    expect(reduction.skipped.find((s) => s.reason.kind === 'unsupported')!.text).toMatch(/^\/Flatten \(Flatten\) flattens the channel axis.*; .*--exclude/);
    // a release gate asks for the target itself
    expect((await judged('structured/matmul-layouts.onnx', true)).result.verdict).toBe('fail');
  });

  it('fails when nothing was pruned, never passes (every group behind a grouped convolution)', async () => {
    const { reduction, result } = await judged('structured/grouped.onnx');
    expect(reduction.achieved).toEqual({ weights: 0, channels: 0, params: 0, macs: 0 });
    expect(result.verdict).toBe('fail');
    expect(reduction.skipped.filter((s) => s.reason.kind === 'grouped-conv').length).toBeGreaterThan(0);
  });

  it('counts unstructured requests in prunable weights and needs no channel tally', () => {
    const r = buildReduction(step(), step({ name: 'prune', sparsity: 0.5, nonzero_params: 59_141 }), { unit: 'weights', requested: 0.5 });
    expect(r.met).toBe(1);
    expect(r.achieved).toEqual({ weights: 0.5, params: 0.5, macs: 0 });
  });
});
