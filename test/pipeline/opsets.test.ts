/**
 * The same trained CNN exported at opsets 7 to 21 (IR 3 to 10): pruning, surgery, reconstruction,
 * distillation and temperature baking write only nodes the model's own opset has, so every file a run
 * writes, and every training graph distillation builds, is a valid model at that opset.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, opsetVersion, saveModel } from '../../src/onnx/model.js';
import { onnxruntime } from '../../src/onnx/runtime/ort.js';
import { buildTrainGraph, selectTrainables } from '../../src/recover/distill/trainGraph.js';
import { cliInProcess, expectReproduced, exported, FAST, head } from '../support/exportRuns.js';
import { fixture, tempDir } from '../support/fixtures.js';
import { checkerKnows, onnxCheckAll } from '../support/onnxChecker.js';

const TEST = head(fixture('fmnist-test.npz'), 300);
const CALIB = head(fixture('fmnist-calib.npz'), 64);
const OPSETS = [7, 10, 13, 17, 21];

/** onnx.checker where the installed onnx knows the IR and opset; onnxruntime's own load check (schemas of that opset) beyond. */
async function expectValid(files: readonly string[]): Promise<void> {
  const known = files.filter(checkerKnows);
  if (known.length > 0) onnxCheckAll(known);
  const { ort } = onnxruntime();
  for (const f of files.filter((x) => !known.includes(x))) await (await ort.InferenceSession.create(f)).release();
}

function written(out: string): string[] {
  const steps = path.join(out, 'steps');
  return [...fs.readdirSync(out).filter((f) => f.endsWith('.onnx')).map((f) => path.join(out, f)), ...(fs.existsSync(steps) ? fs.readdirSync(steps).filter((f) => f.endsWith('.onnx')).map((f) => path.join(steps, f)) : [])];
}

describe.each(OPSETS)('cnn-opset%i', (opset) => {
  const model = exported(`cnn-opset${opset}.onnx`);

  it('the distillation training graph is valid at the model opset', async () => {
    const proto = loadModel(model).proto;
    expect(opsetVersion(proto)).toBe(opset);
    const tg = buildTrainGraph(proto, selectTrainables(proto, new Set()), { batch: 4, temperature: 2, labelWeight: 0.5, masked: new Set() });
    const file = path.join(tempDir(), 'train.onnx');
    saveModel(tg.model, file);
    await expectValid([file]);
  });

  for (const method of ['unstructured', 'structured']) {
    it(`${method} with --recovery auto and --calib: every step recovers or says why not, every file written is valid`, async () => {
      // channel widths taken as they are (timing each layer kind's fast widths builds probe models of its
      // own, not the model's opset); 1 GMAC of recovery refits every layer and leaves distillation a few
      // epochs, which run the same training graph as thirty would
      const structured = method === 'structured' ? ['--sparsity', '0.3', '--round-to', '1'] : ['--sparsity', '0.6'];
      const r = await cliInProcess(['run', '--model', model, '--data', TEST, '--calib', CALIB, '--method', method, ...structured, '--scope', 'global', '--recovery-rounds', '1', '--recovery-work', '1', '--bake-temperature', ...FAST]);
      expect([0, 1], r.stderr).toContain(r.code);
      const m = r.model!;
      const names = m.steps.map((s) => s.name);
      expect(names).toContain('recover:reconstruct');
      expect(names.at(-1)).toBe('calibrate:temperature');
      // distillation ran (kept or not), or a note says in one line why it was skipped
      const notes = (m.notes ?? []).join('\n');
      expect(r.stderr.includes('distill epoch 1') || /distillation skipped: .*opset/.test(notes)).toBe(true);
      for (const s of m.steps) await expectReproduced(s, TEST, 'logits');
      const files = written(r.out);
      expect(files.length).toBeGreaterThanOrEqual(3);
      for (const f of files) expect(Number(loadModel(f).proto.irVersion)).toBe(Number(loadModel(model).proto.irVersion));
      await expectValid(files);
    });
  }
});
