import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { canonicalJson, sha256File, sha256Text } from '../io/hash.js';
import type { NamedInput } from '../io/inputPaths.js';
import { reproduceDifferences } from '../ledger/reproduce.js';
import type { Ledger, Reproduce } from '../ledger/types.js';
import { BOOTSTRAP_SEED } from '../measure/stats/bootstrap.js';
import { onnxruntimeVersion } from '../onnx/runtime/ort.js';
import { QUALITY_THREADS } from '../onnx/runtime/quality.js';
import { DEFAULT_DISTILL } from '../recover/distill/distill.js';
import { PATCH_SEED } from '../recover/patches.js';
import { VERSION } from '../version.js';
import type { RunRequest } from './request.js';

/** The `run` arguments without `--out` (and its value): verify re-runs them into a folder of its own. */
export function withoutOut(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') i++;
    else if (!argv[i].startsWith('--out=')) out.push(argv[i]);
  }
  return out;
}

/** Every input file with the sha256 of its bytes, hashed before the run reads it. */
export function hashInputs(inputs: readonly NamedInput[]): Reproduce['inputs'] {
  return inputs.map((i) => ({ flag: i.flag, path: i.path, sha256: sha256File(i.path) }));
}

/** The ledger's reproducibility record of one `run`. */
export function reproduceRecord(req: Pick<RunRequest, 'config' | 'budgets'>, argv: readonly string[], inputs: Reproduce['inputs'], prunedFile: string | null): Reproduce {
  return {
    argv: withoutOut(argv),
    cwd: process.cwd(),
    inputs,
    config_sha256: sha256Text(canonicalJson({ config: req.config, budgets: req.budgets })),
    versions: { prune_guard: VERSION, onnxruntime: onnxruntimeVersion(), node: process.version },
    quality_threads: QUALITY_THREADS,
    seeds: { reconstruct_patches: PATCH_SEED, distill: DEFAULT_DISTILL.seed, bootstrap: BOOTSTRAP_SEED },
    pruned_sha256: prunedFile && fs.existsSync(prunedFile) ? sha256File(prunedFile) : null,
  };
}

/** A ledger `verify` can re-run: read, with its record; one line naming the file and the fix otherwise. */
export function readRecordedLedger(file: string): Ledger & { reproduce: Reproduce } {
  let ledger: Ledger;
  try {
    ledger = JSON.parse(fs.readFileSync(file, 'utf8')) as Ledger;
  } catch (e) {
    throw new UserError(`${file}: not a readable ledger.json (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); pass the ledger.json a prune-guard run wrote`);
  }
  if (!ledger || typeof ledger !== 'object' || !ledger.reproduce || !Array.isArray(ledger.reproduce.argv)) {
    throw new UserError(`${file}: has no reproducibility record ('reproduce'); only ledgers written by prune-guard run can be verified`);
  }
  return ledger as Ledger & { reproduce: Reproduce };
}

/**
 * The folder a record's relative paths are read from: the recorded one when it still exists, else the
 * current one (a checkout moved elsewhere).
 */
export function recordedCwd(r: Reproduce): string {
  return fs.existsSync(r.cwd) ? r.cwd : process.cwd();
}

/** Refuses a re-run whose inputs are not the recorded bytes: one line naming the first that differs. */
export function checkRecordedInputs(r: Reproduce, cwd: string): void {
  for (const i of r.inputs) {
    const file = path.resolve(cwd, i.path);
    if (!fs.existsSync(file)) throw new UserError(`${i.flag} ${i.path}: missing (the run read it from ${file}); restore it to verify`);
    const now = sha256File(file);
    if (now !== i.sha256) throw new UserError(`${i.flag} ${i.path}: changed since the run (sha256 ${i.sha256.slice(0, 16)} recorded, ${now.slice(0, 16)} now); restore the recorded file to verify`);
  }
}

/**
 * `prune-guard verify`: check the recorded inputs, re-run the recorded command with `rerun` (which writes
 * the new ledger), and return one line per difference: none means the same pruned file and numbers.
 */
export async function verifyRecorded(file: string, rerun: (argv: readonly string[], cwd: string) => Promise<Ledger>): Promise<string[]> {
  const recorded = readRecordedLedger(file);
  const cwd = recordedCwd(recorded.reproduce);
  checkRecordedInputs(recorded.reproduce, cwd);
  const fresh = await rerun(recorded.reproduce.argv, cwd);
  return reproduceDifferences(recorded, fresh);
}
