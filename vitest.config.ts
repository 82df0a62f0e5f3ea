import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // onnxruntime sessions use both cores; running files in parallel only adds noise and memory
    fileParallelism: false,
    // a test that asserts nothing cannot fail
    expect: { requireAssertions: true },
    reporters: ['default', './test/support/closingLineReporter.ts'],
  },
});
