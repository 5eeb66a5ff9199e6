/**
 * Every error celeriac throws is a `CeleriacError` with a stable `code`, so callers can branch on
 * `err.code` without string-matching messages. Messages name the problem and the fix.
 */
export type ErrorCode =
  | 'INVALID_OPTIONS'
  | 'INVALID_NAME'
  | 'INVALID_PAYLOAD'
  | 'INVALID_MESSAGE'
  | 'UNKNOWN_TASK'
  | 'DUPLICATE_TASK'
  | 'TASK_FAILED'
  | 'TASK_TIMEOUT'
  | 'RESULT_TIMEOUT'
  | 'LEASE_LOST'
  | 'BACKEND'
  | 'NON_RETRYABLE'
  | 'REVOKED'
  | 'UNSUPPORTED';

export class CeleriacError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad options, names or payloads given by the caller. Nothing was sent. */
export class ValidationError extends CeleriacError {}

/** A message names a task this app does not register. */
export class UnknownTaskError extends CeleriacError {
  constructor(readonly taskName: string) {
    super('UNKNOWN_TASK', `unknown task "${taskName}": register it with app.task("${taskName}", …) in the app the worker loads`);
  }
}

/** Plain-data form of an error, as it is stored in results and dead letters (JSON only). */
export interface ErrorInfo {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

export type FinalFailureState = 'failed' | 'expired' | 'revoked';

/** `handle.result()` rejects with this when the task ended without a value. */
export class TaskFailedError extends CeleriacError {
  constructor(
    readonly taskId: string,
    readonly state: FinalFailureState,
    readonly error: ErrorInfo | null,
  ) {
    const why = error ? `${error.name}: ${error.message}` : state;
    super('TASK_FAILED', `task ${taskId} ${state}: ${why}`);
  }
}

/** Thrown inside a handler to end retries at once: the task fails and is dead-lettered. */
export class NonRetryableError extends CeleriacError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NON_RETRYABLE', message, options);
  }
}

/** The attempt ran past its `timeoutMs`; `ctx.signal` was aborted with this reason. */
export class TaskTimeoutError extends CeleriacError {
  constructor(readonly timeoutMs: number) {
    super('TASK_TIMEOUT', `task attempt exceeded its time limit of ${timeoutMs} ms`);
  }
}

/** The task was revoked (`app.control.revoke`): with `terminate`, `ctx.signal` aborts with this reason. */
export class TaskRevokedError extends CeleriacError {
  constructor(readonly taskId: string) {
    super('REVOKED', `task ${taskId} was revoked (app.control.revoke): it is not run, nor retried`);
  }
}

/** A control feature needs shared state this app's store cannot keep (RabbitMQ alone). */
export class ControlUnavailableError extends CeleriacError {
  constructor(feature: string) {
    super(
      'UNSUPPORTED',
      `${feature} needs a store shared by every worker, and this app's store keeps none (RabbitMQ alone keeps results in reply queues): ` +
        "add a Redis store, createApp({ broker: 'amqp://…', results: 'redis://…' })",
    );
  }
}

/** `handle.result({ timeoutMs })` saw no final state in time. The task may still finish later. */
export class ResultTimeoutError extends CeleriacError {
  constructor(taskId: string, timeoutMs: number) {
    super('RESULT_TIMEOUT', `no result for task ${taskId} within ${timeoutMs} ms (it may still be queued or running)`);
  }
}

/**
 * The delivery no longer owns its message (its lease expired and it was redelivered, or it was
 * settled already). The broker refused the ack, so a newer attempt's outcome is never overwritten.
 */
export class LeaseLostError extends CeleriacError {
  constructor(taskId: string) {
    super('LEASE_LOST', `lease lost for task ${taskId}: it was redelivered or settled elsewhere; this outcome was discarded`);
  }
}

/** A broker or result store failed or is missing. */
export class BackendError extends CeleriacError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BACKEND', message, options);
  }
}

/** A zod error as one line: `a.b: message; c: message` (the field first, as every message here words it). */
export function describeIssues(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): string {
  return error.issues.map((i) => `${i.path.length ? `${i.path.map(String).join('.')}: ` : ''}${i.message}`).join('; ');
}

export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof Error) {
    const info: ErrorInfo = { name: err.name, message: err.message };
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') info.code = code;
    if (err.stack) info.stack = err.stack;
    return info;
  }
  return { name: 'Error', message: typeof err === 'string' ? err : JSON.stringify(err) ?? String(err) };
}
