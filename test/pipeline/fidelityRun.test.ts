/**
 * Models that are not one classifier output, and data without labels, gated by their outputs' fidelity
 * to the dense model through the CLI (in process): the two-output detector and the embedding model of
 * fixtures/exports, each with a budget that passes and one that fails, and every fidelity number of the
 * shipped model reproduced from onnxruntime outputs by the reference evaluator.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger/types.js';
import { runCli, type CliResult } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { referenceFidelity } from '../support/referenceEval.js';
import { firstSamples } from '../support/slice.js';

const UNLABELLED = firstSamples(fixture('exports/fmnist-unlabelled.npz'), 64);
const CALIB = firstSamples(fixture('fmnist-calib.npz'), 64);
const FAST = ['--batch-sizes', '1', '--runs', '3', '--warmup', '1'];

async function run(model: string, extra: string[]): Promise<{ r: CliResult; ledger: Ledger; out: string }> {
  const out = path.join(tempDir(), 'out');
  const r = await runCli(['run', '--model', fixture(`exports/${model}`), '--data', UNLABELLED, '--out', out, ...FAST, ...extra]);
  const ledger = JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
  return { r, ledger, out };
}

/** The shipped model's fidelity in the ledger equals the reference evaluator's on the same data. */
async function expectReproduced(ledger: Ledger, model: string): Promise<void> {
  const m = ledger.models[0];
  const want = await referenceFidelity(fixture(`exports/${model}`), m.pruned, UNLABELLED);
  const fidelity = m.steps.at(-1)!.fidelity!;
  expect(fidelity.map((f) => f.output)).toEqual([...want.keys()]);
  for (const f of fidelity) {
    const w = want.get(f.output)!;
    expect(f.samples).toBe(64);
    expect(f.cosine).toBeCloseTo(w.cosine, 6);
    expect(f.rel_l2 / w.relL2).toBeCloseTo(1, 5);
    expect(f.max_abs).toBeCloseTo(w.maxAbs, 5);
  }
}

describe('a two-output detector, judged by fidelity without labels', () => {
  let run1: Awaited<ReturnType<typeof run>>;
  beforeAll(async () => {
    run1 = await run('detector.onnx', ['--calib', CALIB, '--recovery', 'reconstruct', '--budget', 'min-output-cosine@scores=0.999', '--budget', 'max-output-rel-error@boxes=1%']);
  }, 120_000);

  it('says in one line that it judges fidelity and why, on stderr and in the ledger', () => {
    const line = "task: fidelity (the model has 2 outputs): outputs 'boxes', 'scores' judged against the dense model's on the same inputs; --task classification (config task:) judges labels instead";
    expect(run1.r.stderr).toContain(line);
    expect(run1.ledger.models[0].notes).toContain(line);
    expect(run1.ledger.models[0].task).toBe('fidelity');
    expect(run1.ledger.models[0].eval).toMatchObject({ samples: 64, classes: 0, outputs: ['boxes', 'scores'] });
  });

  it('a budget that holds passes, one that does not fails, and the run exits 1', () => {
    const m = run1.ledger.models[0];
    const fid = m.budgets.filter((b) => b.name.includes('output'));
    expect(fid.map((b) => [b.name, b.output ?? '*', b.verdict])).toEqual([
      ['min-output-cosine', '*', 'pass'],
      ['min-output-cosine', 'scores', 'pass'],
      ['max-output-rel-error', 'boxes', 'fail'],
    ]);
    const final = m.steps.at(-1)!.fidelity!;
    expect(fid[2].actual).toBe(final.find((f) => f.output === 'boxes')!.rel_l2);
    expect(m.verdict).toBe('fail');
    expect(run1.r.code).toBe(1);
    // no label budget is judged or reported as unmeasured: the defaults of classification are left out
    expect(m.budgets.map((b) => b.name)).not.toContain('accuracy-drop');
  });

  it('reconstruction refits toward the dense outputs, and the temperature is skipped with its reason', () => {
    const m = run1.ledger.models[0];
    const boxes = (name: string) => m.steps.find((s) => s.name === name)!.fidelity!.find((f) => f.output === 'boxes')!.rel_l2;
    expect(boxes('recover:reconstruct')).toBeLessThan(boxes('prune'));
    expect(m.notes).toContain('recovery: temperature not fitted: the run judges fidelity to the dense outputs, with no classifier head to scale nor labels to fit a temperature on');
  });

  it('its numbers are reproduced from the two models\' onnxruntime outputs', async () => {
    await expectReproduced(run1.ledger, 'detector.onnx');
  });

  it('the comment shows the fidelity budgets and a table of every output', () => {
    const md = fs.readFileSync(path.join(run1.out, 'ledger.md'), 'utf8');
    expect(md).toMatch(/\| `max.output.rel.error@boxes`<br><sub>dense → pruned<\/sub> \| ≤\s1% \| \d+\.\d\d% \| [^|]+ \| ❌ fail \|/);
    expect(md).toContain('**Output fidelity** <sub>(against the dense model on the same 64 samples)</sub>');
  });
});

describe('an embedding model, judged by fidelity without labels', () => {
  let run1: Awaited<ReturnType<typeof run>>;
  beforeAll(async () => {
    run1 = await run('embed.onnx', ['--recovery', 'none', '--sparsity', '0.3', '--budget', 'min-output-cosine=0.9', '--budget', 'max-output-rel-error=0.1%']);
  }, 120_000);

  it('one output, no labels: a passing and a failing budget, exit 1, numbers reproduced', async () => {
    const m = run1.ledger.models[0];
    expect(run1.r.stderr).toContain(`task: fidelity (${UNLABELLED} has no labels 'y'): output 'embedding' judged against the dense model's on the same inputs`);
    expect(m.budgets.filter((b) => b.name.includes('output')).map((b) => [b.name, b.verdict])).toEqual([
      ['min-output-cosine', 'pass'],
      ['max-output-rel-error', 'fail'],
    ]);
    expect(run1.r.code).toBe(1);
    await expectReproduced(run1.ledger, 'embed.onnx');
  });
});

describe('choosing the task', () => {
  it('--task classification on unlabelled data is refused in one line that names the fidelity task', async () => {
    const out = path.join(tempDir(), 'out');
    const r = await runCli(['run', '--model', fixture('exports/embed.onnx'), '--data', UNLABELLED, '--out', out, '--task', 'classification']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--task fidelity/);
  });

  it('settings that need labels are refused with the fidelity task before any work', async () => {
    const out = path.join(tempDir(), 'out');
    const r = await runCli(['run', '--model', fixture('exports/detector.onnx'), '--data', UNLABELLED, '--out', out, '--schedule', 'gradual']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('prune-guard: error: --schedule gradual: task fidelity (every output judged against the dense model) prunes one shot; drop --schedule or judge labels with --task classification');
    expect(fs.existsSync(out)).toBe(false);
  });
});
