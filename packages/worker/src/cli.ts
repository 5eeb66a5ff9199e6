// The command lives in cli/ (a file per command, cli/main.ts dispatches). This path stays for the
// code that imported it before the move (test/redis/cli-stop.test.ts reads FORCE_EXIT_MS here).
export { loadApp, main } from './cli/main.js';
export { FORCE_EXIT_MS } from './cli/signals.js';
