/**
 * A child process for the kill-mid-publish test: publishes numbered sets into one folder as fast as it
 * can until it is killed. Set k holds ledger.json {"set":k}, model.onnx (k repeated) and, for even k
 * only, steps/a; so consecutive sets differ in content and in names.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OutputDir } from '../../src/io/outputDir.js';

const dir = process.argv[2];
for (let k = 0; ; k++) {
  const out = await OutputDir.open(dir, { waitMs: 10_000 });
  fs.writeFileSync(path.join(out.staging, 'model.onnx'), String(k).repeat(20_000));
  if (k % 2 === 0) {
    fs.mkdirSync(path.join(out.staging, 'steps'));
    fs.writeFileSync(path.join(out.staging, 'steps', 'a'), String(k));
  }
  fs.writeFileSync(path.join(out.staging, 'ledger.json'), JSON.stringify({ set: k }));
  out.commit();
  process.stdout.write(`${k}\n`);
}
