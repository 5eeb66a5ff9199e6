import { ControlUnavailableError, ResultTimeoutError, TaskFailedError, TaskRevokedError, toErrorInfo, ValidationError } from './errors.js';
import { REVOCATION_SETTLED_MS, revocationOf, revokedUnrun } from './control/state.js';
import type { ResultBackend } from './results.js';
import type { Connection } from './app.js';
import type { RevokeResult } from './control/control.js';
import { readProgress, type Progress } from './control/progress.js';
import type { TaskRef, TaskState } from './results.js';
import { withTimeout } from './timeout.js';

/** setTimeout's ceiling; "no limit" waits in slices of this. */
const MAX_TIMER_MS = 2_147_483_647;

export interface ResultOptions {
  /** Give up after this long with `ResultTimeoutError` (default: wait as long as it takes). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** What a handle needs of its app (the app itself, in practice). */
export interface HandleHost {
  connection(): Promise<Connection>;
  readonly control: { revoke(id: string, options: { terminate?: boolean; queue?: string }): Promise<RevokeResult> };
}

/** A reference to an enqueued task: await its result, ask its state, or revoke it, from any process. */
export class TaskHandle<R = unknown> implements TaskRef {
  readonly #host: HandleHost;
  constructor(
    host: HandleHost,
    readonly id: string,
    readonly queue: string,
    readonly taskName: string,
    /** True when enqueue found an existing task (same id or idempotency key) and created nothing. */
    readonly duplicate = false,
  ) {
    this.#host = host;
  }

  #connect(): Promise<Connection> {
    return this.#host.connection();
  }

  /** The last progress its handler reported (`ctx.progress`), or null. Needs a shared store (not RabbitMQ alone). */
  async progress(): Promise<Progress | null> {
    return readProgress(await this.#connect(), this);
  }

  /** Revokes the task (`app.control.revoke`): not run if it has not started; with `terminate`, aborted if it has. */
  revoke(options: { terminate?: boolean } = {}): Promise<RevokeResult> {
    return this.#host.control.revoke(this.id, { ...options, queue: this.queue });
  }

  /** The handler's return value once the task succeeded; rejects with `TaskFailedError` otherwise. */
  async result(options: ResultOptions = {}): Promise<R> {
    const limit = options.timeoutMs ?? Infinity;
    if (typeof limit !== 'number' || Number.isNaN(limit) || limit < 0) {
      throw new ValidationError('INVALID_OPTIONS', `result(): timeoutMs must be a number ≥ 0 or Infinity (got ${String(limit)})`);
    }
    const started = Date.now();
    // The limit covers connecting too: a store that cannot be reached is no reason to wait longer.
    const connecting = this.#connect();
    const conn = Number.isFinite(limit) ? await withTimeout(connecting, limit, () => new ResultTimeoutError(this.id, limit)) : await connecting;
    const { results } = conn;
    this.#assertKnowable(results);
    // A revoked task that is not running will not run: say so once that is sure (`revokedUnrun`),
    // not when (or if) a worker drops it. Most tasks end before a revoke could be sure, so the
    // revocation is looked up only if no outcome came by then: no extra round trip for them.
    let checkAt = started + REVOCATION_SETTLED_MS;
    for (;;) {
      if (Date.now() >= checkAt) checkAt = await this.#revokedCheck(conn);
      const left = limit - (Date.now() - started);
      const slice = Math.max(0, Math.min(left, MAX_TIMER_MS, checkAt - Date.now()));
      const record = await results.wait(this, { timeoutMs: slice, ...(options.signal ? { signal: options.signal } : {}) });
      if (record) {
        if (record.state === 'succeeded') return record.value as R;
        throw new TaskFailedError(this.id, record.state, record.error ?? null);
      }
      if (options.signal?.aborted) throw options.signal.reason;
      if (Date.now() >= checkAt) continue;
      if (Date.now() - started >= limit) throw new ResultTimeoutError(this.id, limit);
    }
  }

  /** Where the task is now. Final states come from the result store, the rest from the broker. */
  async state(): Promise<TaskState> {
    const conn = await this.#connect();
    const { broker, results } = conn;
    this.#assertKnowable(results);
    const record = await results.get(this);
    if (record) return record.state;
    if (await revokedUnrun(conn, this)) return 'revoked';
    return (broker.capabilities.taskStates ? await broker.state(this) : null) ?? 'pending';
  }

  /** Throws when the task was surely revoked unrun; else when to look again (its revoke becomes sure), or never. */
  async #revokedCheck(conn: Connection): Promise<number> {
    const revocation = await revocationOf(conn.results.coordination, this.id);
    if (!revocation) return Infinity;
    const sureAt = revocation.at + REVOCATION_SETTLED_MS;
    if (Date.now() < sureAt) return sureAt;
    if (await revokedUnrun(conn, this)) throw new TaskFailedError(this.id, 'revoked', toErrorInfo(new TaskRevokedError(this.id)));
    return Infinity; // running (or done): its outcome comes as for any task
  }

  /** A store that can never learn this task's outcome must say so, not report `pending` forever. */
  #assertKnowable(results: ResultBackend): void {
    if (results.knows?.(this) === false) throw new ControlUnavailableError(`the outcome of task ${this.id}, enqueued by another process (or with replies off),`);
  }

  toJSON(): { id: string; queue: string; task: string } {
    return { id: this.id, queue: this.queue, task: this.taskName };
  }
}
