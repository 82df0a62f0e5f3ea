import { defineConfig } from 'vitest/config';

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
    // a test that asserts nothing cannot fail
    expect: { requireAssertions: true },
    reporters: ['default', './test/support/closingLineReporter.ts'],
  },
});
