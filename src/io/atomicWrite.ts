import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Write to a unique temp file in the target's folder, fsync, then rename over the target: readers see
 * the old file or the new one, never half of one, and two concurrent runs never share a temp file.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array | Iterable<Uint8Array>): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx');
  try {
    if (typeof data === 'string' || data instanceof Uint8Array) fs.writeFileSync(fd, data);
    // chunks are written as they come, so the whole content never has to be in memory at once
    else for (const chunk of data) writeAll(fd, chunk);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

function writeAll(fd: number, chunk: Uint8Array): void {
  let done = 0;
  while (done < chunk.byteLength) done += fs.writeSync(fd, chunk, done, chunk.byteLength - done);
}
