import { describeIssues, LeaseLostError, NonRetryableError, TaskRevokedError, TaskTimeoutError } from './errors.js';
import { settleRevoked } from './control/revocation.js';
import { reportProgress } from './control/progress.js';
import type { Run, RunOutcome } from './execution.js';
import type { TaskContext } from './task.js';
import { settling } from './settlement.js';
import { childLogger, type Logger } from './logger.js';

/**
 * Runs the handler with `ctx.signal` and the time limit, and records its outcome for
 * `settleOutcome`. An attempt aborted for another reason than its time limit (lease lost, worker
 * stopping at once) ends here: its outcome is not ours to record.
 */
export async function runHandler(run: Run): Promise<RunOutcome | undefined> {
  const { message, control, app, task } = run;
  if (control.aborted) return control.reason instanceof LeaseLostError ? 'lost' : control.reason instanceof TaskRevokedError ? settleRevoked(run) : release(run); // before it began
  run.emit({ type: 'task:started', message, attempt: run.attempt });
  const started = (run.startedAt = Date.now());
  const ctx = handlerContext(run);
  const timeoutMs = task!.options.timeoutMs;
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => control.abort(new TaskTimeoutError(timeoutMs)), timeoutMs);
  const work = Promise.resolve().then(() => task!.handler(run.input, ctx));
  // The handler's real end, which a time limit cannot hasten (JavaScript cannot kill it): only then
  // is its worker slot free and its claims released, so an attempt that ignores its signal never
  // runs alongside its own retry and never pushes a worker past its concurrency.
  const end = () => {
    run.handlerEnded = true;
  };
  run.ended = work.then(end, end);
  void run.ended.then(() => control.handlerDone());
  try {
    const value = toJson(await control.race(work), message.task);
    if (task!.output) {
      const out = task!.output.safeParse(value);
      if (!out.success) throw new NonRetryableError(`task "${message.task}" returned a value that fails its output schema: ${describeIssues(out.error)}`);
    }
    run.outcome = { ok: true, value, durationMs: Date.now() - started };
    return undefined;
  } catch (err) {
    const reason: unknown = control.aborted ? control.reason : undefined;
    if (reason === undefined || reason instanceof TaskTimeoutError) {
      run.outcome = { ok: false, error: reason ?? err, durationMs: Date.now() - started };
      return undefined;
    }
    if (reason instanceof LeaseLostError) {
      // Where only a store claim was lost (or the lease keeper gave up in time), the broker may
      // still lease the message to us: give it back now rather than let it lapse as a crash.
      // Where the lease did move on, the broker refuses this (fenced), which is fine.
      await settling(run).release().catch(() => {});
      return 'lost';
    }
    if (reason instanceof TaskRevokedError) return settleRevoked(run); // terminated: ends revoked, never retried
    return release(run);
  } finally {
    clearTimeout(timer);
  }
}

/** The worker is stopping at once: the message goes back unchanged, for another worker. */
async function release(run: Run): Promise<RunOutcome> {
  await settling(run).release();
  return 'released';
}

function toJson(value: unknown, task: string): unknown {
  try {
    return value === undefined ? null : JSON.parse(JSON.stringify(value));
  } catch (err) {
    throw new NonRetryableError(`task "${task}" returned a value that is not JSON-serialisable: ${(err as Error).message}`);
  }
}

/**
 * `ctx` as a handler gets it: `signal`, `log` and `progress` are made on first use (most handlers
 * use none), as own getters, so destructuring and spreading `ctx` both work.
 */
function handlerContext(run: Run): TaskContext {
  const { message, attempt } = run;
  let log: Logger | undefined;
  let progress: ((value: unknown) => Promise<void>) | undefined;
  return {
    id: message.id,
    task: message.task,
    queue: message.queue,
    attempt,
    maxAttempts: message.maxAttempts,
    idempotencyKey: message.idempotencyKey,
    get signal() {
      return run.control.signal;
    },
    // Bound to the task on first use: a pino child per task is not free.
    get log() {
      return (log ??= childLogger(run.logger, { taskId: message.id, task: message.task, attempt }));
    },
    get progress() {
      return (progress ??= (value: unknown) => reportProgress(run.conn, message, value, run.app.options.resultTtlMs, run.leaseMs));
    },
  };
}
