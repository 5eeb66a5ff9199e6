#!/usr/bin/env node
// The `celeriac` command. Runs the built package (dist/), which `npm ci` builds via `prepare`.
import '../dist/run-cli.js';
