#!/usr/bin/env node
// Entry point of the `celeriac` command (bin/celeriac.mjs loads the built copy of this file).
import { main } from './cli/main.js';

// Exit explicitly: a handler that ignored its abort signal may still hold timers after a stop.
process.exit(await main(process.argv.slice(2)));
