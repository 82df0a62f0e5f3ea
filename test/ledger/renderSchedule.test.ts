import { describe, expect, it } from 'vitest';
import { renderMarkdown } from '../../src/ledger/render.js';
import { scheduleSection } from '../../src/ledger/renderSchedule.js';
import type { ScheduleLedger, ScheduleStep } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { sampleLedger, sampleModel } from './fixtures.js';

function row(index: number, o: Partial<ScheduleStep> = {}): ScheduleStep {
  return {
    index,
    target: 0.2 * index,
    sparsity: 0.2 * index,
    step: `recover:reconstruct@${index}`,
    artifact: `out/steps/step-0${index}/02-reconstruct.onnx`,
    calib_accuracy: 0.9 - 0.01 * index,
    accuracy: 0.89 - 0.01 * index,
    size_bytes: 100_000,
    p50_ms: 0.5,
    budgets: [
      { name: 'accuracy-drop', actual: 0.01 * index, verdict: index > 1 ? 'fail' : 'pass' },
      { name: 'max-size-bytes', actual: 100_000, verdict: 'pass' },
    ],
    verdict: index > 1 ? 'fail' : 'pass',
    ...o,
  };
}

const schedule: ScheduleLedger = {
  kind: 'gradual',
  planned_steps: 4,
  initial: 0,
  targets: [0.2, 0.4, 0.6, 0.8],
  patience: 1,
  cliff_threshold: 0.01,
  cliff_metric: 'calib',
  dense_quality: 0.9,
  steps: [row(1), row(2)],
  stopped_early: { after_step: 2, reason: 'cliff', detail: 'calibration top-1 fell more than 1.00 pt below dense for 1 step in a row (now 2.00 pt below)' },
  chosen: 1,
  chosen_reason: 'the sparsest step that meets every budget',
  rollback: 'models/mlp.onnx',
};

describe('scheduleSection', () => {
  it('is absent for a one-shot run', () => {
    expect(scheduleSection(sampleModel())).toBeUndefined();
  });

  it('renders one budget-ledger row per step with a verdict per budget, the stop and the shipped step', () => {
    const md = scheduleSection(sampleModel({ schedule }))!;
    // one cell names the budgets a step missed, so the table keeps to 7 columns whatever the budgets
    expect(md).toContain('| Step | Sparsity (target) | Calib top-1 | Top-1 | p50 ms | Size | Budgets |');
    expect(md).toContain('| 1 (ships) | 20.0% (20.0%) | 89.00% | 88.00% | 0.50 | 97.7 KiB | ✅ all 2 |');
    expect(md).toContain('| 2 | 40.0% (40.0%) | 88.00% | 87.00% | 0.50 | 97.7 KiB | ❌ `accuracy\u2011drop` |');
    expect(md).toContain('Stopped early after step 2 of 4 (cliff): calibration top-1 fell');
    expect(md).toContain('Ships step 1 (`recover:reconstruct@1`): the sparsest step that meets every budget. Rollback: the dense model `models/mlp.onnx`');
  });

  it('sits in the full markdown, and a ledger carrying it still validates', () => {
    const ledger = sampleLedger();
    ledger.models[0].schedule = schedule;
    expect(validateLedger(ledger)).toEqual([]);
    expect(renderMarkdown(ledger)).toContain('**Schedule**');
    ledger.models[0].schedule = { ...schedule, chosen: 0 };
    expect(validateLedger(ledger).length).toBeGreaterThan(0);
  });
});
