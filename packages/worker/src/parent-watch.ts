import type { Logger } from '@celeriac/core';

/**
 * Stops the command gracefully when npm exits without passing its signal on.
 *
 * `npx celeriac worker` and `npm run` start the command through `sh -c`: a SIGTERM to npm reaches
 * the shell, which dies without forwarding it, and the worker is re-parented and runs on with
 * nobody to stop it. Only then, and only under npm (a worker started with nohup or by a process
 * manager is meant to outlive its parent), the command sends itself the SIGTERM it missed.
 *
 * 1. Remembers the parent process when the command starts under npm (`npm_command` is set).
 * 2. Polls `process.ppid`; a change means the parent exited and the process was re-parented.
 * 3. If no SIGTERM/SIGINT arrived meanwhile (a stop already under way), warns and signals itself.
 */
export function watchParent(logger: Logger, intervalMs = 500): () => void {
  const launcher = process.env.npm_command;
  if (!launcher) return () => {};
  const parent = process.ppid;
  let signalled = false;
  const onSignal = () => (signalled = true);
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    stop();
    if (signalled) return;
    logger.warn({ launcher: `npm ${launcher}` }, 'npm exited without passing on its signal; stopping gracefully (run node_modules/.bin/celeriac directly under a process manager or in a container)');
    process.kill(process.pid, 'SIGTERM');
  }, intervalMs);
  timer.unref();
  process.on('SIGTERM', onSignal).on('SIGINT', onSignal);
  function stop() {
    clearInterval(timer);
    process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
  }
  return stop;
}
