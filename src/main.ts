// GitHub Action entry point: wired in a later slice (see issue "The GitHub Action").
import * as core from '@actions/core';

core.setFailed('prune-guard: the GitHub Action mode is not available in this version yet; use the CLI (`npx prune-guard run ...`)');
