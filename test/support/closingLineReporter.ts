import type { Reporter, TestCase, TestModule } from 'vitest/node';

/** A test that never ran because a hook of its suite or file failed (a missing input, a crashed setup run). */
function underFailedHook(test: TestCase): boolean {
  for (let s: TestCase['parent'] | undefined = test.parent; s; s = s.type === 'suite' ? s.parent : undefined) {
    if (s.errors().length > 0) return true;
  }
  return false;
}

/** CI reads a plain `N passed, N failed` line; vitest's own summary is not recognised. */
export default class ClosingLineReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        // vitest marks the tests of a suite whose beforeAll threw as skipped: they failed to run
        else if (state === 'failed' || underFailedHook(test)) failed++;
        else skipped++;
      }
      // a file that fails to load has no tests but must still count as a failure
      if (mod.state() === 'failed' && [...mod.children.allTests()].length === 0) failed++;
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
