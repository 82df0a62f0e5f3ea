import { execFileSync, spawnSync } from 'node:child_process';

const PYTHON = '/usr/bin/python3';

let available: boolean | undefined;

/**
 * Throws with the checker's message when onnx.checker (full_check, with shape inference) rejects the
 * file. The model is loaded and checked in memory: given a path, onnx 1.12's full check writes the
 * shape-inferred model back over the file it checks. Debian's python3-onnx is the reference validator
 * and CI installs it, so a machine without it fails the test rather than skipping the check.
 */
export function onnxCheck(file: string): void {
  available ??= spawnSync(PYTHON, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;
  if (!available) throw new Error(`onnx.checker is missing: ${PYTHON} cannot import onnx; install Debian's python3-onnx (CI's .ci/run does)`);
  execFileSync(PYTHON, ['-c', 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)', file], { stdio: ['ignore', 'ignore', 'pipe'] });
}
