import { describe, expect, it } from 'vitest';
import { allocationSection } from '../../src/ledger/renderAllocation.js';
import type { AllocationRecord } from '../../src/ledger/types.js';

const probe = (batch: number, multiple: number, cached: boolean) => ({ kind: 'Conv 3x3', axis: 'out' as const, batch, fixed: 32, spatial: [14, 14], curve: { counts: [40, 48], ms: [1, 1] }, multiple, scores: [], cached });

describe('the allocation section of the ledger', () => {
  it('folds the widths per layer kind and a latency target\'s attempts, the shipped one marked', () => {
    const a: AllocationRecord = {
      rounding: 'measured', machine: 'cpu', onnxruntime: '1.30.0', threads: 1, batches: [1, 32],
      probes: [probe(1, 8, true), probe(32, 16, false)],
      groups: [{ name: 'g', multiple: 16, from: ['Conv 3x3 (output channels): 16'] }],
      target: {
        kind: 'speedup', value: 2, batch: 1, dense_ms: 0.4, speedup_needed: 2, outcome: 'met', detail: 'measured 2.10x of 2.00x at batch 1', shipped: 1,
        attempts: [
          { step: 'target:attempt-1', budget_ms: 0.2, predicted_ms: 0.19, reached: true, p50_ms: 0.25, speedup: 1.6, macs: 100 },
          { step: 'prune', budget_ms: 0.16, predicted_ms: 0.15, reached: true, p50_ms: 0.19, speedup: 2.1, macs: 80 },
        ],
      },
    };
    const md = allocationSection(a)!;
    expect(md).toMatch(/^<details><summary>Channel allocation and latency target<\/summary>/);
    expect(md).toContain('| Conv 3x3 | out | b=1: 8, b=32: 16 (timed now) |');
    expect(md).toContain('| 2 (ships) |');
    expect(md).toContain('met, measured 2.10x of 2.00x at batch 1');
    expect(md.split('\n').filter((l) => l.startsWith('|')).every((l) => l.split(' | ').length <= 7)).toBe(true);
  });

  it('says how the whole-model check timed its candidates and which rule shipped', () => {
    const base: AllocationRecord = { rounding: 'measured', machine: 'cpu', onnxruntime: '1.30.0', threads: 1, batches: [32], probes: [probe(32, 16, false)], groups: [{ name: 'g', multiple: 16, from: [] }] };
    const int8 = allocationSection({ ...base, width_check: { coarse_multiple: 16, whole_blocks: true, batches: [32], speedup: [1.13], chosen: 'coarse', cached: false, timed_as: 'int8', tried: [{ multiple: 16, whole_blocks: true, speedup: [1.13] }] } })!;
    expect(int8).toContain('Timed as whole models quantized to INT8 (as they ship), every group on whole multiples of 16 (no halvings below) ran faster than the probes\' widths (1.13x at batch 32), so those ship.');
    const float = allocationSection({ ...base, width_check: { coarse_multiple: 32, batches: [32], speedup: [0.97], chosen: 'measured', cached: true, tried: [{ multiple: 32, speedup: [0.97] }] } })!;
    expect(float).toContain('Timed as whole models, every group on multiples of 32 ran no faster than the probes\' widths (0.97x at batch 32, cached), so the probes\' widths ship.');
  });

  it('says nothing when no width was measured or recorded', () => {
    expect(allocationSection({ rounding: 'none' })).toBeUndefined();
  });
});
