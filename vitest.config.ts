import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defineConfig } from 'vitest/config';
import HeaviestFirst from './test/support/heaviestFirst.js';

// channel-width probes are cached per machine; a test run starts from an empty cache of its own, so no
// test depends on what an earlier run (or the developer's own runs) measured
const probeCache = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-test-cache-'));

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two files at a time: onnxruntime's threads then share the two cores with the other file, but most of
    // a test's time is single-threaded JavaScript (surgery, reconstruction, parsing), so the suite finishes
    // sooner at the same CPU time. Each file runs in its own process, so process.chdir and peak-RSS checks
    // stay per file.
    fileParallelism: true,
    maxWorkers: 2,
    // the longest file bounds the run: start the long ones first (test/support/heaviestFirst.ts)
    sequence: { sequencer: HeaviestFirst },
    // a test that asserts nothing cannot fail
    expect: { requireAssertions: true },
    reporters: ['default', './test/support/closingLineReporter.ts'],
    env: { PRUNE_GUARD_CACHE_DIR: probeCache },
  },
});
