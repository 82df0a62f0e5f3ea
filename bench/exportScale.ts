/**
 * The torchvision scale models are large and gitignored, so a clean clone has none. This exports the
 * missing ones with Debian's /usr/bin/python3 (torch 1.13, torchvision 0.14; fixtures/export_torchvision.py),
 * or, where that Python has no torchvision, returns one line saying how to produce them.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const PYTHON = '/usr/bin/python3';

export function ensureScaleModels(root: string, names: readonly string[], log: (line: string) => void): { missing: string[]; notice?: string } {
  const dir = path.join(root, 'fixtures/scale');
  const absent = names.filter((n) => !fs.existsSync(path.join(dir, `${n}.onnx`)));
  if (absent.length === 0) return { missing: [] };
  const how = `${PYTHON} fixtures/export_torchvision.py fixtures/scale ${absent.join(' ')}`;
  const probe = fs.existsSync(PYTHON) ? spawnSync(PYTHON, ['-c', 'import torch, torchvision, onnx'], { encoding: 'utf8' }) : undefined;
  if (!probe || probe.status !== 0) {
    return { missing: absent, notice: `skipped scale models ${absent.join(', ')}: ${PYTHON} with torch, torchvision and onnx is not available here; produce them with ${how}` };
  }
  log(`bench: exporting ${absent.join(', ')} to fixtures/scale (${how})`);
  fs.mkdirSync(dir, { recursive: true });
  const r = spawnSync(PYTHON, [path.join(root, 'fixtures/export_torchvision.py'), dir, ...absent], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'] });
  const missing = absent.filter((n) => !fs.existsSync(path.join(dir, `${n}.onnx`)));
  if (r.status !== 0 || missing.length > 0) return { missing, notice: `skipped scale models ${missing.join(', ')}: the export failed (exit ${r.status}); run ${how}` };
  return { missing: [] };
}
