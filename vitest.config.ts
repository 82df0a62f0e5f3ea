import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defineConfig } from 'vitest/config';

// channel-width probes are cached per machine; a test run starts from an empty cache of its own, so no
// test depends on what an earlier run (or the developer's own runs) measured
const probeCache = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-guard-test-cache-'));

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // onnxruntime sessions use both cores; running files in parallel only adds noise and memory
    fileParallelism: false,
    reporters: ['default', './test/support/closingLineReporter.ts'],
    env: { PRUNE_GUARD_CACHE_DIR: probeCache },
  },
});
