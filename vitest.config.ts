import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defineConfig } from 'vitest/config';
import HeaviestFirst from './test/support/heaviestFirst.js';

// channel-width probes are cached per machine; a test run starts from an empty cache of its own, so no
// test depends on what an earlier run (or the developer's own runs) measured
const probeCache = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-test-cache-'));

// Files that need a process of their own: module mocks (vi.mock replaces a module for every later file in
// the process), peak-memory readings (the process's high-water mark), decisions on measured latency
// (a heap left big by earlier files adds collector pauses to the timings), and files that load big
// libraries no other file uses (Playwright and Mermaid, dependency-cruiser: about 60 MB of heap that
// would stay for the rest of a shared worker's files, every full collection walking it)
const OWN_PROCESS = [
  'test/github/comment.browser.test.ts',
  'test/layers.test.ts',
  'test/pipeline/nmVerify.test.ts',
  'test/pipeline/funnel.test.ts',
  'test/measure/runtimeCost.test.ts',
  'test/measure/memory.test.ts',
  'test/measure/latency.test.ts',
  'test/measure/sequential.test.ts',
  'test/pipeline/latencyTarget.test.ts',
  'test/pipeline/targetCandidates.test.ts',
  'test/prune/structured/latencyModel.test.ts',
];

export default defineConfig({
  test: {
    // The rest share their worker's process: importing the sources and onnxruntime once per worker instead
    // of once per file saves about a third of a second of CPU per file. runCli restores the working
    // directory, and no other file mocks a module or leaves process state behind.
    projects: [
      { extends: true, test: { name: 'shared', include: ['test/**/*.test.ts'], exclude: OWN_PROCESS, isolate: false } },
      { extends: true, test: { name: 'own-process', include: OWN_PROCESS, isolate: true } },
    ],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two files at a time: onnxruntime's threads then share the two cores with the other file, but most of
    // a test's time is single-threaded JavaScript (surgery, reconstruction, parsing), so the suite finishes
    // sooner at the same CPU time.
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
