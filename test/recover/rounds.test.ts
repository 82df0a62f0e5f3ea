import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, type Config } from '../../src/config/schema.js';
import type { Dataset } from '../../src/data/dataset.js';
import type { Ledger, ModelLedger } from '../../src/ledger/types.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { GraphIndex } from '../../src/onnx/graph.js';
import { loadModel } from '../../src/onnx/model.js';
import { tensorToFloat32 } from '../../src/onnx/tensor.js';
import { prunableWeights } from '../../src/prune/prunable.js';
import { countSparsity } from '../../src/prune/sparsity.js';
import { pruneRound } from '../../src/pipeline/rounds.js';
import { AUTO_COMPARE, AUTO_ROUNDS, resolveCompare, resolveRounds } from '../../src/recover/rounds.js';
import { oneOpModel, seededWeights } from '../support/buildModel.js';
import { runCli, type CliResult } from '../support/cli.js';
import { fixture, tempDir } from '../support/fixtures.js';

const NONE = { exclude: [], keepFirstLayer: false, keepLastLayer: false };
const labelled = { count: 8, labels: new Int32Array(8) } as unknown as Dataset;
const unlabelled = { count: 8, labels: null } as unknown as Dataset;
// the pipeline resolves scope auto before these run; unstructured resolves to global
const cfg = (over: Partial<Config>): Config => ({ ...DEFAULT_CONFIG, scope: 'global', ...over });

describe('resolveRounds', () => {
  it('auto (0) uses rounds only for high-sparsity unstructured auto recovery with a labelled calibration set', () => {
    expect(resolveRounds(cfg({ recoveryRounds: 0, sparsity: 0.8 }), labelled)).toBe(AUTO_ROUNDS);
    expect(resolveRounds(cfg({ recoveryRounds: 0, sparsity: 0.5 }), labelled)).toBe(1);
    expect(resolveRounds(cfg({ recoveryRounds: 0, sparsity: 0.8 }), unlabelled)).toBe(1);
    expect(resolveRounds(cfg({ recoveryRounds: 0, sparsity: 0.8 }), undefined)).toBe(1);
    expect(resolveRounds(cfg({ recoveryRounds: 0, sparsity: 0.8, method: 'structured' }), labelled)).toBe(1);
    expect(resolveRounds(cfg({ recoveryRounds: 0, sparsity: 0.8, recovery: 'reconstruct' }), labelled)).toBe(1);
    expect(resolveRounds(cfg({ recoveryRounds: 0, sparsity: 0.8, schedule: 'gradual' }), labelled)).toBe(1);
    expect(resolveRounds(cfg({ recoveryRounds: 0, sparsity: 0.8, criterion: 'sparsegpt' }), labelled)).toBe(1);
    expect(resolveRounds(cfg({ recoveryRounds: 0, sparsity: 0.8, maxLayerSparsity: 0.9 }), labelled)).toBe(1);
    expect(resolveRounds(cfg({ recoveryRounds: 3, sparsity: 0.5 }), labelled)).toBe(3);
    // auto rounds under global scope compare both allocations; explicit rounds only when asked
    expect(resolveCompare(cfg({ recoveryRounds: 0 }), AUTO_ROUNDS)).toBe(AUTO_COMPARE);
    expect(resolveCompare(cfg({ recoveryRounds: 0, scope: 'sensitivity' }), AUTO_ROUNDS)).toBe(false);
    expect(resolveCompare(cfg({ recoveryRounds: 0 }), 1)).toBe(false);
    expect(resolveCompare(cfg({ recoveryRounds: 0, sparsity: 0.97 }), AUTO_ROUNDS)).toBe(false);
    expect(resolveCompare(cfg({ recoveryRounds: 4 }), 4)).toBe(false);
    expect(resolveCompare(cfg({ recoveryRounds: 4, roundsCompareSensitivity: true }), 4)).toBe(true);
  });

  it('the default config runs rounds at 80% with a labelled calib, and leaves 50% one shot', () => {
    expect(resolveRounds({ ...DEFAULT_CONFIG, sparsity: 0.8 }, labelled)).toBe(AUTO_ROUNDS);
    expect(resolveRounds(DEFAULT_CONFIG, labelled)).toBe(1);
    expect(resolveCompare({ ...DEFAULT_CONFIG, scope: 'global', sparsity: 0.8 }, AUTO_ROUNDS)).toBe(AUTO_COMPARE);
  });
});

describe('pruneRound (hand-built Gemm)', () => {
  it('reaches the round target from an already-pruned model and keeps every earlier zero', () => {
    const values = seededWeights(12 * 10, 7);
    const model = oneOpModel({ opType: 'Gemm', x: ['N', 12], weight: { dims: [10, 12], values }, y: ['N', 10], ints: { transB: 1 } });
    const weights = prunableWeights(model, NONE);
    const first = pruneRound(model, weights, 0.3, { scope: 'global' });
    const second = pruneRound(first, weights, 0.7, { scope: 'global' });
    const a = tensorToFloat32(new GraphIndex(first.graph!).initializers.get('W')!);
    const b = tensorToFloat32(new GraphIndex(second.graph!).initializers.get('W')!);
    expect(countSparsity(first, weights).overall).toBeCloseTo(0.3, 2);
    expect(countSparsity(second, weights).overall).toBeCloseTo(0.7, 2);
    let kept = 0;
    for (let i = 0; i < a.length; i++) {
      if (a[i] === 0) expect(b[i], `W[${i}]`).toBe(0);
      if (b[i] !== 0) {
        kept++;
        expect(b[i]).toBe(a[i]);
      }
    }
    expect(kept).toBe(120 - 84);
  });
});

function ledgerOf(out: string): Ledger {
  return JSON.parse(fs.readFileSync(path.join(out, 'ledger.json'), 'utf8')) as Ledger;
}

const FAST = ['--warmup', '1', '--runs', '3', '--batch-sizes', '1'];
const MLP = ['--model', fixture('mlp.onnx'), '--data', fixture('fmnist-test.npz'), '--calib', fixture('fmnist-calib.npz')];

describe('--recovery-rounds 3 (fixture MLP to 80%, reconstruct after each round)', () => {
  const out = tempDir();
  let result: CliResult;
  let model: ModelLedger;
  beforeAll(async () => {
    result = await runCli(['run', ...MLP, '--sparsity', '0.8', '--recovery', 'reconstruct', '--recovery-rounds', '3', '--out', out, ...FAST]);
    model = ledgerOf(out).models[0];
  }, 180_000);

  it('records each intermediate round as a measured step with its gain and cost, then the final prune and recovery', () => {
    expect(result.stderr).not.toMatch(/internal error/);
    expect(validateLedger(ledgerOf(out))).toEqual([]);
    expect(model.steps.map((s) => s.name)).toEqual(['dense', 'recover:round-1', 'recover:round-2', 'prune', 'recover:reconstruct']);
    const [, r1, r2, prune, last] = model.steps;
    expect(r1.sparsity).toBeLessThan(r2.sparsity);
    expect(r2.sparsity).toBeLessThan(0.8);
    expect(prune.sparsity).toBeCloseTo(0.8, 3);
    expect(last.sparsity).toBeCloseTo(0.8, 3);
    for (const r of [r1, r2]) {
      expect(r.recovery!.seconds).toBeGreaterThan(0);
      // reconstruction after a round's prune wins calibration accuracy back
      expect(r.recovery!.calib_accuracy_after!).toBeGreaterThan(r.recovery!.calib_accuracy_before!);
    }
    expect(prune.description).toMatch(/round 3 of 3/);
    expect(model.notes?.some((n) => /recovery-rounds: 3 rounds/.test(n))).toBe(true);
  });

  it('only adds zeros from round to round, and ships the last recovery', () => {
    const names = prunableWeights(loadModel(fixture('mlp.onnx')).proto, NONE).map((w) => w.initializer);
    const files = model.steps.slice(1).map((s) => s.artifact);
    const read = (f: string) => {
      const index = new GraphIndex(loadModel(f).proto.graph!);
      return names.map((n) => tensorToFloat32(index.initializers.get(n)!));
    };
    for (let i = 1; i < files.length; i++) {
      const before = read(files[i - 1]);
      const after = read(files[i]);
      let revived = 0;
      before.forEach((a, t) => {
        for (let j = 0; j < a.length; j++) if (a[j] === 0 && after[t][j] !== 0) revived++;
      });
      expect(revived, files[i]).toBe(0);
    }
    expect(fs.readFileSync(model.pruned)).toEqual(fs.readFileSync(model.steps.at(-1)!.artifact));
  });

  it('refuses rounds with structured pruning with exit 2 and one line, writing nothing', async () => {
    const never = path.join(tempDir(), 'never');
    const r = await runCli(['run', ...MLP, '--method', 'structured', '--recovery-rounds', '3', '--out', never, ...FAST]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--recovery-rounds 3: rounds prune unstructured weights/);
    expect(fs.existsSync(never)).toBe(false);
  }, 60_000);
});

describe('--rounds-compare-sensitivity (fixture MLP to 80%, 2 rounds, reconstruct)', () => {
  it('runs the rounds with both allocations and ships the chain with the lower calibration NLL, naming the other', async () => {
    const out = tempDir();
    const r = await runCli(['run', ...MLP, '--sparsity', '0.8', '--recovery', 'reconstruct', '--recovery-rounds', '2', '--rounds-compare-sensitivity', '--out', out, ...FAST]);
    expect(r.stderr).not.toMatch(/internal error/);
    const ledger = ledgerOf(out);
    expect(validateLedger(ledger)).toEqual([]);
    const m = ledger.models[0];
    expect(m.steps.map((s) => s.name)).toEqual(['dense', 'recover:round-1', 'prune', 'recover:reconstruct']);
    const note = m.notes!.find((n) => n.startsWith('recovery rounds with both allocations:'))!;
    const kept = /kept the (global|sensitivity) allocation/.exec(note)![1];
    const nll = (which: string) => Number(new RegExp(`${which} allocation calib acc [0-9.]+%, NLL ([0-9.]+)`).exec(note)![1]);
    const other = kept === 'global' ? 'sensitivity' : 'global';
    expect(nll(kept)).toBeLessThanOrEqual(nll(other));
    // the shipped chain's files are in its own folder, and so are the other's
    expect(m.steps[2].artifact).toBe(path.join(out, 'steps', kept, '01-prune.onnx'));
    expect(fs.existsSync(path.join(out, 'steps', other, '01-prune.onnx'))).toBe(true);
    expect(m.sensitivity !== undefined).toBe(kept === 'sensitivity');
    expect(m.steps.at(-1)!.sparsity).toBeCloseTo(0.8, 3);
  }, 180_000);
});
