// GitHub Action entry point: read inputs, build the client and context, hand over to run().
// onnxruntime-path must be in the environment before onnxruntime loads, and @actions/github reads the
// environment when first imported: so everything else is imported dynamically, after this.
import * as core from '@actions/core';

const ortPath = core.getInput('onnxruntime-path');
if (ortPath) process.env.PRUNE_GUARD_ONNXRUNTIME_PATH = ortPath;

let entry: () => Promise<void>;
try {
  ({ entry } = await import('./github/entry.js'));
} catch (e) {
  // loading onnxruntime failed (a platform without a bundled binding, a wrong onnxruntime-path)
  core.setFailed(`prune-guard: ${e instanceof Error ? e.message : String(e)}`);
  process.exit();
}
await entry();
