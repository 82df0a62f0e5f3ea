/**
 * Models trained and exported elsewhere (../shared/real-world, read-only), run the way a user would:
 * default recovery with their calibration set. The dense accuracy in the ledger is the one their README
 * states, measured independently. Missing models fail these tests: they are not optional.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliInProcess, expectReproduced, FAST } from '../support/exportRuns.js';
import { realWorldDir } from '../support/fixtures.js';

const CASES = [
  // CNTK 2.5.1, opset 8, IR 3 (initializers listed as inputs), batch fixed at 1, raw 0..255 pixels
  // (its MatMul weight sits behind a constant Reshape: pruned like the two convolutions)
  // (work: the recovery GMAC that run every default stage on the model, one distillation epoch included)
  { name: 'mnist-8-cntk', accuracy: 0.984, fixed: 1, layers: 3, work: 6 },
  // PyTorch 1.7, opset 10, dynamic batch
  { name: 'cifar10-cnn', accuracy: 0.633, fixed: undefined, layers: 5, work: 70 },
];

describe.each(CASES)('$name', ({ name, accuracy, fixed, layers, work }) => {
  it(`runs with --recovery auto --calib without error, and the ledger's dense accuracy is ${(accuracy * 100).toFixed(1)}%`, async () => {
    const dir = realWorldDir(name);
    const data = path.join(dir, 'test.npz');
    // the work runs every default stage (sensitivity curves, reconstruction of every layer, distillation),
    // so the run ends by work, not by the safety stop's clock
    const r = await cliInProcess(['run', '--model', path.join(dir, 'model.onnx'), '--data', data, '--calib', path.join(dir, 'calib.npz'), '--recovery', 'auto', ...FAST, '--recovery-time-budget', '15', '--recovery-work', String(work)]);
    expect([0, 1], r.stderr).toContain(r.code);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(r.model!.scope).toBe('sensitivity');
    expect(r.stderr).not.toMatch(/not refit for work|distillation skipped/);
    expect(r.stderr).toContain('recovery: distill epoch 1:');
    // convolutions exported with auto_pad are refit like any other (their pads follow from the shapes)
    expect(r.stderr).not.toMatch(/not refit \(auto_pad/);
    const m = r.model!;
    expect(m.steps[0].accuracy).toBeCloseTo(accuracy, 4);
    expect(m.eval.fixed_batch).toBe(fixed);
    expect(m.steps.length).toBeGreaterThanOrEqual(2);
    expect(m.steps[1].layers).toHaveLength(layers);
    expect(m.steps[1].sparsity).toBeCloseTo(0.5, 2);
    await expectReproduced(m.steps[0], data, 'logits');
    await expectReproduced(m.steps.at(-1)!, data, 'logits');
  });
});
