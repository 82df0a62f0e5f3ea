import { execFileSync, spawnSync } from 'node:child_process';

const PYTHON = '/usr/bin/python3';

/** Debian's python3-onnx is the reference validator; CI installs it, so there a missing one is a failure. */
export const hasOnnxChecker: boolean = (() => {
  const ok = spawnSync(PYTHON, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;
  if (!ok && process.env.CI) throw new Error('CI must install python3-onnx: onnx.checker tests cannot run');
  return ok;
})();

/** Throws with the checker's message when onnx.checker (full_check, with shape inference) rejects the file. */
export function onnxCheck(file: string): void {
  execFileSync(PYTHON, ['-c', 'import onnx,sys; onnx.checker.check_model(sys.argv[1], full_check=True)', file], { stdio: ['ignore', 'ignore', 'pipe'] });
}
