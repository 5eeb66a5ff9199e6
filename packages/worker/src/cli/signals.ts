import { constants } from 'node:os';
import type { Logger } from '@celeriac/core';

/**
 * How long a stop may still run after a second SIGTERM/SIGINT before the process exits anyway
 * (a third signal exits at once). The second signal has aborted the running tasks: this leaves
 * their release a moment to reach the broker. A stop that hangs (a broker cut off by a silent
 * partition, a handler that ignores its signal) then ends here, so no worker needs SIGKILL.
 */
export const FORCE_EXIT_MS = 3_000;

/**
 * Counts SIGTERM/SIGINT while the command runs: the second ends the process FORCE_EXIT_MS later
 * unless the command has returned by then, the third at once (exit code 128 + signal number, as
 * for a process the signal killed). Listening also keeps a signal that arrives once the worker's
 * own handlers are gone (during the final close) from killing the process mid-close. Returns the
 * function that stops listening.
 */
export function forceExitOnSecondSignal(logger: Logger): () => void {
  let count = 0;
  let timer: NodeJS.Timeout | undefined;
  const exit = (signal: NodeJS.Signals) => process.exit(128 + (constants.signals[signal] ?? 15));
  const onSignal = (signal: NodeJS.Signals) => {
    count++;
    if (count === 2) {
      timer = setTimeout(() => {
        logger.error({ signal, afterMs: FORCE_EXIT_MS }, 'the stop did not finish after a second signal; exiting now (tasks not given back return after their lease)');
        exit(signal);
      }, FORCE_EXIT_MS);
    } else if (count > 2) {
      logger.error({ signal }, 'third signal; exiting now (tasks not given back return after their lease)');
      exit(signal);
    }
  };
  process.on('SIGTERM', onSignal).on('SIGINT', onSignal);
  return () => {
    clearTimeout(timer);
    process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
  };
}
