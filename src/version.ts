/** Kept equal to package.json's version by test/version.test.ts; written into every pruned model. */
export const VERSION = '0.1.0';
