// GitHub Action entry point: read inputs, build the client and context, hand over to run().
// onnxruntime-path must be in the environment before onnxruntime loads, and @actions/github reads the
// environment when first imported: so everything else is imported dynamically, after this.
import * as core from '@actions/core';

const ortPath = core.getInput('onnxruntime-path');
if (ortPath) process.env.PRUNE_GUARD_ONNXRUNTIME_PATH = ortPath;

const { entry } = await import('./github/entry.js');
await entry();
