#!/usr/bin/env node
// The CLI runs from the committed bundle, so `npx prune-guard` needs no build step.
import '../dist/cli.js';
