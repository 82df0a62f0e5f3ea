import { describe, expect, it } from 'vitest';
import { silentProgress, stageLine, stageName, type StageEvent } from '../../src/io/progress.js';
import { Deadline, TimedOut } from '../../src/pipeline/deadline.js';

describe('stage events', () => {
  it('render to the progress line and the short name a timed-out ledger uses', () => {
    const cases: [StageEvent, string, string][] = [
      [{ kind: 'prune', model: 'mlp.onnx', detail: 'unstructured to 50.0%' }, 'pruning mlp.onnx: unstructured to 50.0%', 'pruning mlp.onnx'],
      [{ kind: 'prune', model: 'mlp.onnx', detail: 'unstructured to 30.0%', schedule: { step: 1, steps: 3 } }, 'pruning mlp.onnx (schedule step 1/3): unstructured to 30.0%', 'pruning mlp.onnx'],
      [{ kind: 'sensitivity', detail: 'unstructured, 3 layers', total: 3 }, 'sensitivity curves (unstructured, 3 layers)', 'sensitivity curves'],
      [{ kind: 'recover', work: 'reconstruct', detail: 'layer-wise reconstruction on the calibration set' }, 'recovery: layer-wise reconstruction on the calibration set', 'recovery'],
      [{ kind: 'recover', work: 'round', round: 2, rounds: 4, detail: 'unstructured to 62.3%' }, 'recovery round 2/4: unstructured to 62.3%', 'recovery round'],
      [{ kind: 'evaluate', step: 'recover:reconstruct', total: 10 }, 'evaluate recover:reconstruct', 'evaluate recover:reconstruct'],
      [{ kind: 'latency', detail: '3 models interleaved', total: 6 }, 'latency (3 models interleaved)', 'latency'],
    ];
    for (const [e, line, name] of cases) {
      expect(stageLine(e)).toBe(line);
      expect(stageName(e)).toBe(name);
    }
  });
});

describe('Deadline', () => {
  it('names the current stage from stage events only: a note that reads like a stage is a remark', () => {
    const d = new Deadline(undefined);
    const p = d.watch(silentProgress);
    expect(d.stage).toBe('load model and data');
    p.note('pruning mlp.onnx: this is only a remark');
    p.note('recovery: w1 not refit (recovery-time-budget reached)');
    expect(d.stage).toBe('load model and data');
    p.stage({ kind: 'prune', model: 'mlp.onnx', detail: 'unstructured to 50.0%' });
    expect(d.stage).toBe('pruning mlp.onnx');
    p.stage({ kind: 'evaluate', step: 'prune@2', total: 100 });
    expect(d.stage).toBe('evaluate prune@2');
  });

  it('stops at the first report past the limit, naming the stage that was running', async () => {
    const d = new Deadline(0.01);
    const p = d.watch(silentProgress);
    p.stage({ kind: 'evaluate', step: 'dense', total: 100 });
    await new Promise((r) => setTimeout(r, 30));
    let thrown: unknown;
    try {
      p.update(50);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(TimedOut);
    expect((thrown as TimedOut).stage).toBe('evaluate dense');
    expect((thrown as TimedOut).limitSeconds).toBe(0.01);
    // the stage a report would open is not entered: the run stopped in the one before
    expect(() => p.stage({ kind: 'latency', detail: '2 models interleaved', total: 4 })).toThrow(TimedOut);
    expect(d.stage).toBe('evaluate dense');
  });
});
