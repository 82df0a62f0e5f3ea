import * as fs from 'node:fs';
import { gzipSync } from 'node:zlib';

export interface FileSize {
  bytes: number;
  /** gzip -6 of the file: what unstructured zeros save in storage and transfer */
  gzipBytes: number;
}

export function measureFileSize(file: string): FileSize {
  const data = fs.readFileSync(file);
  return { bytes: data.byteLength, gzipBytes: gzipSync(data, { level: 6 }).byteLength };
}
