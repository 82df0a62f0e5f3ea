import { execFileSync, spawnSync } from 'node:child_process';
import { loadModel, opsetVersion } from '../../src/onnx/model.js';

const PYTHON = '/usr/bin/python3';

let available: boolean | undefined;

/** Debian's onnx 1.12 knows IR versions up to 8 and opsets up to 17; newer files it cannot read at all. */
export const CHECKER_MAX_IR = 8;
export const CHECKER_MAX_OPSET = 17;

/** Whether onnx.checker can judge the file: its IR version and opset are ones the installed onnx knows. */
export function checkerKnows(file: string): boolean {
  const m = loadModel(file).proto;
  return Number(m.irVersion) <= CHECKER_MAX_IR && opsetVersion(m) <= CHECKER_MAX_OPSET;
}

/**
 * Throws with the checker's message when onnx.checker (full_check, with shape inference) rejects the
 * file. The model is loaded and checked in memory: given a path, onnx 1.12's full check writes the
 * shape-inferred model back over the file it checks. Debian's python3-onnx is the reference validator
 * and CI installs it, so a machine without it fails the test rather than skipping the check.
 */
export function onnxCheck(file: string): void {
  onnxCheckAll([file]);
}

/** onnxCheck for several files in one Python process (each starts in about a second on a busy runner). */
export function onnxCheckAll(files: readonly string[]): void {
  available ??= spawnSync(PYTHON, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;
  if (!available) throw new Error(`onnx.checker is missing: ${PYTHON} cannot import onnx; install Debian's python3-onnx (CI's .ci/run does)`);
  const script = 'import onnx,sys\nfor f in sys.argv[1:]:\n  try: onnx.checker.check_model(onnx.load(f), full_check=True)\n  except Exception as e: sys.exit(f"{f}: {e}")';
  execFileSync(PYTHON, ['-c', script, ...files], { stdio: ['ignore', 'ignore', 'pipe'] });
}
