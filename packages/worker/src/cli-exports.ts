/**
 * @celeriac/worker/cli — the `celeriac` command's shared pieces, for commands that live in other
 * packages (`celeriac dashboard` in @celeriac/dashboard): the flags every command takes, parsing
 * them, the logger they set up, opening an app from `--app` or `--broker`, and the usage error.
 *
 *   import { COMMON_ARGS, parse, type Command } from '@celeriac/worker/cli';
 *   export const myCommand: Command = { summary: '…', run: async (argv, out) => { const { values } = parse(argv, COMMON_ARGS); … return 0; } };
 */
export { COMMON_ARGS, LOG_HELP, commandLogger, int, parse } from './cli/args.js';
export type { Command, LogFormat, Out } from './cli/args.js';
export { BULK_TIMEOUT_MS, OPERATE_TIMEOUT_MS, UnreachableError, openApp } from './cli/operate.js';
export type { ConnectionFlags } from './cli/operate.js';
export { forceExitOnSecondSignal } from './cli/signals.js';
export { watchParent } from './parent-watch.js';
export { UsageError } from './usage-error.js';
