import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel, opsetVersion } from '../../src/onnx/model.js';

const PYTHON = '/usr/bin/python3';

/** Debian's python3-onnx is the reference validator; CI installs it, so there a missing one is a failure. */
export const hasOnnxChecker: boolean = (() => {
  const ok = spawnSync(PYTHON, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;
  if (!ok && process.env.CI) throw new Error('CI must install python3-onnx: onnx.checker tests cannot run');
  return ok;
})();

/** Debian's onnx 1.12 knows IR versions up to 8 and opsets up to 17; newer files it cannot read at all. */
export const CHECKER_MAX_IR = 8;
export const CHECKER_MAX_OPSET = 17;

/** Whether onnx.checker can judge the file: its IR version and opset are ones the installed onnx knows. */
export function checkerKnows(file: string): boolean {
  const m = loadModel(file).proto;
  return Number(m.irVersion) <= CHECKER_MAX_IR && opsetVersion(m) <= CHECKER_MAX_OPSET;
}

/**
 * Throws with the checker's message when onnx.checker (full_check, with shape inference) rejects the file.
 * onnx 1.12's path form rewrites the file it checks, so a copy is checked.
 */
export function onnxCheck(file: string): void {
  onnxCheckAll([file]);
}

/** onnxCheck for several files in one Python process (each starts in about a second on a busy runner). */
export function onnxCheckAll(files: readonly string[]): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-check-'));
  try {
    const copies = files.map((f, i) => {
      const copy = path.join(dir, `${i}.onnx`);
      fs.copyFileSync(f, copy);
      return copy;
    });
    const script = 'import onnx,sys\nfor f, name in zip(sys.argv[1::2], sys.argv[2::2]):\n  try: onnx.checker.check_model(f, full_check=True)\n  except Exception as e: sys.exit(f"{name}: {e}")';
    execFileSync(PYTHON, ['-c', script, ...copies.flatMap((c, i) => [c, files[i]])], { stdio: ['ignore', 'ignore', 'pipe'] });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
