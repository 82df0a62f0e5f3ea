/**
 * Models as exporters write them, checked as written: a 1000-class ledger stays small, and every file
 * written passes onnx.checker. (Reading each export's format: exports.test.ts; every export variant
 * against every method: coverageMatrix.test.ts.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectReproduced, exported, head, runExport as run } from '../support/exportRuns.js';
import { fixture } from '../support/fixtures.js';
import { onnxCheckAll } from '../support/onnxChecker.js';

const TEST = fixture('fmnist-test.npz');
const CALIB = head(fixture('fmnist-calib.npz'), 64);

describe('1000 classes', () => {
  it('keeps ledger.json under 2 MB: the classes that changed most in full, the rest summarised, and the comment lists only classes that matter', async () => {
    const data = exported('cls1000-test.npz');
    const r = await run('cls1000.onnx', data, '--recovery', 'none', '--sparsity', '0.7');
    expect([0, 1]).toContain(r.code);
    const size = fs.statSync(path.join(r.out, 'ledger.json')).size;
    expect(size).toBeLessThan(2 * 2 ** 20);
    const m = r.model!;
    expect(m.eval.classes).toBe(1000);
    for (const s of m.steps) {
      expect(s.per_class).toBeNull();
      expect(s.confusion).toBeUndefined();
      expect(s.class_digest!.shown).toHaveLength(20);
      expect(s.class_digest!.rest.classes).toBe(980);
      // every sample is counted once: in a shown class's confusion row or in the summary of the rest
      const shownSamples = s.class_digest!.confusion!.flat().reduce((a, [, n]) => a + n, 0);
      expect(shownSamples + s.class_digest!.rest.samples!).toBe(280);
      await expectReproduced(s, data, 'logits');
    }
    expect(m.class_changes.length).toBeGreaterThanOrEqual(20);
    expect(m.class_changes_rest!.classes + m.class_changes.length).toBeLessThanOrEqual(1000);
    const md = fs.readFileSync(path.join(r.out, 'ledger.md'), 'utf8');
    // a class with one or two samples loses a whole sample at once: noise, not a class that matters
    const section = md.split('that lost most')[1]?.split('\n\n**')[0] ?? '';
    const listed = [...section.matchAll(/^\| (\d+) \|/gm)].map((x) => Number(x[1]));
    expect(listed.length).toBeLessThanOrEqual(5);
    for (const c of listed) {
      const change = m.class_changes.find((x) => x.class === c)!;
      expect(change.beyond_budget || (change.p_value ?? 1) < 0.05, `class ${c}`).toBe(true);
    }
    expect(md.length).toBeLessThan(20_000);
  });
});

describe('every file written', () => {
  it('passes onnx.checker', async () => {
    // channel widths taken as they are: which widths run fast changes channel counts, never which nodes are written
    const r = await run('sqz-softmax4d.onnx', TEST, '--calib', CALIB, '--method', 'structured', '--sparsity', '0.3', '--round-to', '1', '--bake-temperature');
    expect([0, 1]).toContain(r.code);
    onnxCheckAll(r.model!.steps.slice(1).map((s) => s.artifact));
  });
});
