import { levelEnabled, type Logger, type TaskEvent } from '@celeriac/core';
import type { Worker } from '../worker.js';
import type { LogFormat } from './args.js';

/**
 * The worker's log of what it runs, a line per task outcome in the spirit of `celery worker -l
 * info`: `echo[<id>] succeeded in 302 ms (attempt 1/3)`. Starts at debug; retries at warn with
 * the error and the delay; failures at error with the reason. In `json` each line also carries
 * its facts as fields (taskId, task, attempt, maxAttempts, durationMs…); in `pretty` the sentence
 * says them, and the same facts again as JSON would only make the line harder to read.
 */
export function logTaskLines(worker: Worker, logger: Logger, format: LogFormat): void {
  const fields = format === 'json' ? (facts: object) => facts : () => ({});
  // A level that is off gets no listener: no per-task work for lines nobody sees.
  if (levelEnabled(logger, 'debug')) worker.on('task:started', (e) => logger.debug(fields(factsOf(e)), `${label(e)} started (${attempt(e)})`));
  if (levelEnabled(logger, 'info')) {
    worker.on('task:succeeded', (e) => {
      logger.info(fields({ ...factsOf(e), durationMs: e.durationMs }), `${label(e)} succeeded in ${seconds(e.durationMs)} (${attempt(e)})`);
    });
  }
  worker.on('task:retrying', (e) => {
    const error = `${e.error.name}: ${e.error.message}`;
    const facts = { ...factsOf(e), durationMs: e.durationMs, error, retryInMs: e.delayMs };
    logger.warn(fields(facts), `${label(e)} failed in ${seconds(e.durationMs)} (${attempt(e)}); retrying in ${seconds(e.delayMs)}: ${error}`);
  });
  worker.on('task:failed', (e) => {
    const ran = e.durationMs === undefined ? {} : { durationMs: e.durationMs };
    const facts = { ...factsOf(e), ...ran, error: `${e.error.name}: ${e.error.message}`, reason: e.reason };
    logger.error(fields(facts), `${label(e)} failed${ran.durationMs === undefined ? '' : ` in ${seconds(ran.durationMs)}`} (${attempt(e)}), for good: ${e.reason}`);
  });
}

function factsOf(e: TaskEvent) {
  return { taskId: e.message.id, task: e.message.task, queue: e.message.queue, attempt: e.attempt, maxAttempts: e.message.maxAttempts };
}

/** `name[id]`, as Celery writes a task. */
function label(e: TaskEvent): string {
  return `${e.message.task}[${e.message.id}]`;
}

function attempt(e: TaskEvent): string {
  return `attempt ${e.attempt}/${e.message.maxAttempts}`;
}

/** `3 ms`, `1.25 s`, `42 s`: a short duration in ms, a longer one in seconds. */
export function seconds(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  return ms < 10_000 ? `${(ms / 1_000).toFixed(2)} s` : `${Math.round(ms / 1_000)} s`;
}
