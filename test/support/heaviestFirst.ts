import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest, longest first (per-file durations that `npm test` reports on the 2-core
 * reference machine). Without a results cache (a clean clone in CI) vitest starts the largest files
 * first, so a short file with one long end-to-end run would start last and keep one worker busy while
 * the other idles; starting the long files first lets the two workers finish together.
 */
const HEAVIEST = [
  'test/pipeline/coverageMatrix.test.ts',
  'test/pipeline/exports.test.ts',
  'test/pipeline/gradual.test.ts',
  'test/github/comment.browser.test.ts',
  'test/pipeline/realWorld.test.ts',
  'test/pipeline/opsets.test.ts',
  'test/hardening/interrupt.test.ts',
  'test/referenceEval.test.ts',
  'test/pipeline/determinism.test.ts',
  'test/hardening/outputs.test.ts',
  'test/recover/commandProcess.test.ts',
  'test/recover/rounds.test.ts',
  'test/prune/sensitivity-macs.test.ts',
  'test/recover/stageJudge.test.ts',
  'test/recover/external.test.ts',
  'test/recover/pipeline.test.ts',
  'test/pipeline/run.test.ts',
];

const rank = (spec: TestSpecification): number => {
  const i = HEAVIEST.findIndex((f) => spec.moduleId.replaceAll('\\', '/').endsWith(f));
  return i < 0 ? HEAVIEST.length : i;
};

export default class HeaviestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    // Array.prototype.sort is stable: the rest keep vitest's own order (cached durations, else size)
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}
