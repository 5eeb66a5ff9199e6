import type { App } from '../app.js';
import { peekOptions, type DeadLetter, type QueueStats } from '../broker.js';
import { GLOBAL_SCOPE } from '../coordination.js';
import type { TaskMessage } from '../envelope.js';
import type { ErrorInfo } from '../errors.js';
import { assertQueueName } from '../names.js';
import { nextTick } from '../schedule.js';
import type { TaskState } from '../results.js';
import { readProgress } from './progress.js';
import { MAX_LISTED, REGISTRY, runningOn, scheduleMarkName, type ActiveTask, type ScheduleDeclaration, type WorkerInfo } from './registry.js';
import { coordinationOf, KINDS, readControlState, revocationOf, revokedUnrun, type Revocation } from './state.js';

export interface QueueInfo extends QueueStats {
  paused: boolean;
}

/** A task waiting in a queue, as `inspect.queue` lists it. */
export interface QueuedTask {
  id: string;
  task: string;
  attempt: number;
  maxAttempts: number;
  priority: number;
  payload: unknown;
  enqueuedAt: number;
  /** When it becomes ready (delayed tasks and retries), else null. */
  eta: number | null;
  /** The error of the attempt before, for a retry (or the dead reason, for a redriven task). */
  lastError: ErrorInfo | null;
}

/** One queue in detail: its counts, the head of its ready tasks, its delayed tasks and the tasks running now. */
export interface QueueDetail extends QueueInfo {
  /**
   * The next tasks a fetch would take, up to the limit (fewer when big messages fill the broker's
   * `MAX_PEEK_BYTES` reply budget); null where the broker cannot list them (RabbitMQ).
   */
  readyTasks: QueuedTask[] | null;
  /** Delayed tasks (and retries waiting for their backoff), soonest first; null where the broker cannot list them. */
  delayedTasks: QueuedTask[] | null;
  /** Tasks running now, by the workers' registry records. */
  running: (ActiveTask & { worker: string })[];
}

export interface TaskInfo {
  id: string;
  /** Null where nothing says which task it is (a waiting task, on a broker that cannot look it up). */
  task: string | null;
  queue: string;
  state: TaskState;
  /** Attempts run so far once finished; null while unknown. */
  attempt: number | null;
  /**
   * From the task's message while it is not settled, where the broker can look it up by id
   * (memory, Redis; not RabbitMQ); null once it finished (results do not keep it).
   */
  maxAttempts: number | null;
  /**
   * While it waits or runs: from its message, where the broker can look it up by id (else null).
   * Once finished: from its result record, as the last attempt received it (null where the app's
   * `keepPayload` did not keep it — by default a success's — and for records written before 0.2).
   */
  payload: unknown;
  /** Once finished: why the record has no payload although `keepPayload` would keep it. */
  payloadOmitted?: 'too large';
  /** When it was first enqueued: from its message, or once finished from its result record (null where neither says). */
  enqueuedAt: number | null;
  /** The handler's return value, once succeeded. */
  result?: unknown;
  error?: ErrorInfo;
  progress: unknown;
  /** The revocation, when the task was revoked (it may not have ended yet). */
  revoked: Revocation | null;
  /**
   * The worker running it now (by its registry record), or once finished the worker that ran its
   * last attempt (from the result record; null for records written before 0.2 or by no worker).
   */
  worker: string | null;
  /** When the running attempt started, or once finished when the last attempt started (null where unknown). */
  startedAt: number | null;
  finishedAt: number | null;
}

export interface ScheduleRuns extends ScheduleDeclaration {
  /** The last tick enqueued (the schedulers' shared mark), null before the first. */
  lastRun: number | null;
  nextRun: number;
}

/**
 * Seeing a running system (`app.inspect`), from any process on the same stores, with or without
 * the app's task definitions. Reads the coordination store (queue index, worker registry,
 * schedules) and the broker; on RabbitMQ alone every call but `deadLetters` rejects with a
 * `ControlUnavailableError` naming the fix.
 */
export class Inspect {
  constructor(private readonly app: App) {}

  /** Every queue published to or served (no list needed), with its counts and whether it is paused. */
  async queues(): Promise<QueueInfo[]> {
    const conn = await this.app.connection();
    const coordination = coordinationOf(conn, 'inspect.queues');
    const [known, control] = await Promise.all([coordination.listRecords(GLOBAL_SCOPE, REGISTRY.queues, { limit: MAX_LISTED.queues }), readControlState(coordination)]);
    const names = [...new Set([...known.map((r) => r.id), ...control.paused])].sort();
    const stats = await Promise.all(names.map((q) => conn.broker.stats(q)));
    return stats.map((s) => ({ ...s, paused: control.paused.has(s.queue) }));
  }

  /** The workers alive now (a killed one drops out within three heartbeats), by id. */
  async workers(): Promise<WorkerInfo[]> {
    const records = await coordinationOf(await this.app.connection(), 'inspect.workers').listRecords(GLOBAL_SCOPE, REGISTRY.workers, { limit: MAX_LISTED.workers });
    return records.map((r) => r.value as WorkerInfo).sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * One task, found by id in the given queue or else in every known queue: its state and outcome
   * from the result store and the broker, the worker running it, its progress. Null when no
   * queue knows it (never seen, or its result expired; on RabbitMQ, also while it waits: a queue
   * cannot be searched by id, so a task is found once it runs or ends).
   */
  async task(id: string, options: { queue?: string } = {}): Promise<TaskInfo | null> {
    const conn = await this.app.connection();
    const coordination = coordinationOf(conn, 'inspect.task');
    const queues = options.queue !== undefined ? [assertQueueName(options.queue)] : (await coordination.listRecords(GLOBAL_SCOPE, REGISTRY.queues, { limit: MAX_LISTED.queues })).map((r) => r.id);
    const running = await runningOn(coordination, id);
    const found = await Promise.all(queues.map((queue) => this.#lookup(id, queue, running?.queue === queue ? running : null)));
    return found.find((t) => t !== null) ?? null;
  }

  /** One queue in detail (see `QueueDetail`): up to `limit` (default 50, at most `MAX_PEEK`) tasks of each list. */
  async queue(queue: string, options: { limit?: number } = {}): Promise<QueueDetail> {
    const name = assertQueueName(queue);
    const { limit } = peekOptions({ state: 'ready', limit: options.limit ?? 50 }, 'inspect.queue');
    const conn = await this.app.connection();
    const coordination = coordinationOf(conn, 'inspect.queue');
    const { broker } = conn;
    const listed = (state: 'ready' | 'delayed') => (broker.peek ? broker.peek(name, { state, limit }).then((ms) => ms.map(queuedTask)) : Promise.resolve(null));
    const [stats, [paused], readyTasks, delayedTasks, workers] = await Promise.all([
      broker.stats(name),
      coordination.getRecords(GLOBAL_SCOPE, KINDS.paused, [name]),
      listed('ready'),
      listed('delayed'),
      coordination.listRecords(GLOBAL_SCOPE, REGISTRY.workers, { limit: MAX_LISTED.workers }),
    ]);
    const running = workers
      .flatMap(({ value }) => (value as WorkerInfo).active.filter((a) => a.queue === name).map((a) => ({ ...a, worker: (value as WorkerInfo).id })))
      .sort((a, b) => a.startedAt - b.startedAt || a.id.localeCompare(b.id));
    return { ...stats, paused: paused != null, readyTasks, delayedTasks, running };
  }

  /** Declared schedules (by the schedulers that run them), with their last and next runs. */
  async schedules(): Promise<ScheduleRuns[]> {
    const conn = await this.app.connection();
    const declared = (await coordinationOf(conn, 'inspect.schedules').listRecords(GLOBAL_SCOPE, REGISTRY.schedules, { limit: MAX_LISTED.schedules })).map((r) => r.value as ScheduleDeclaration);
    const marks = conn.results.marks;
    const now = Date.now();
    return Promise.all(
      declared
        .sort((a, b) => a.name.localeCompare(b.name))
        .map(async (s) => {
          const lastRun = (await marks?.getMark(scheduleMarkName(s.name))) ?? null;
          return { ...s, lastRun, nextRun: nextTick(s, Math.max(now, lastRun ?? now)) };
        }),
    );
  }

  /** Up to `limit` (default 100) dead letters of `queue`, each with the `id` that `app.control.redrive`/`discard` take. */
  async deadLetters(queue: string, options: { limit?: number } = {}): Promise<DeadLetter[]> {
    return (await this.app.connection()).broker.deadLetters(assertQueueName(queue), options.limit ?? 100);
  }

  async #lookup(id: string, queue: string, running: { worker: string; task: string; startedAt: number } | null): Promise<TaskInfo | null> {
    const conn = await this.app.connection();
    const ref = { id, queue };
    const [record, waiting, progress, message, revocation] = await Promise.all([
      conn.results.get(ref),
      conn.broker.capabilities.taskStates ? conn.broker.state(ref) : Promise.resolve(null),
      readProgress(conn, ref),
      conn.broker.message ? conn.broker.message(ref) : Promise.resolve(null),
      revocationOf(conn.results.coordination, id),
    ]);
    if (!record && !waiting && !running && !message) return null;
    const fromMessage = message && !record ? { maxAttempts: message.maxAttempts, payload: message.payload, enqueuedAt: message.createdAt } : { maxAttempts: null, payload: null, enqueuedAt: null };
    const revoked = revocation && (revocation.queue === null || revocation.queue === queue) ? revocation : null;
    const base = { id, queue, ...fromMessage, progress: progress?.value ?? null, revoked, worker: running?.worker ?? null, startedAt: running?.startedAt ?? null };
    if (record) {
      const outcome = record.state === 'succeeded' ? { result: record.value } : record.error ? { error: record.error } : {};
      // Records written before 0.2 hold no payload, times or worker: those stay as the base has them.
      const ran = { payload: record.payload ?? null, enqueuedAt: record.enqueuedAt ?? null, startedAt: record.startedAt ?? base.startedAt, worker: record.worker ?? base.worker };
      const omitted = record.payloadOmitted ? { payloadOmitted: record.payloadOmitted } : {};
      return { ...base, ...ran, ...omitted, task: record.task, state: record.state, attempt: record.attempts, finishedAt: record.finishedAt, ...outcome };
    }
    const state = running ? 'active' : (await revokedUnrun(conn, ref)) ? 'revoked' : (waiting ?? 'pending');
    return { ...base, task: message?.task ?? running?.task ?? null, state, attempt: message?.attempt ?? null, finishedAt: null };
  }
}

/** A waiting message as `inspect.queue` lists it. */
function queuedTask(m: TaskMessage): QueuedTask {
  // Parsed from JSON, so an optional field of `lastError` is absent, never `undefined`.
  const lastError = m.lastError as ErrorInfo | null;
  return { id: m.id, task: m.task, attempt: m.attempt, maxAttempts: m.maxAttempts, priority: m.priority, payload: m.payload, enqueuedAt: m.createdAt, eta: m.eta, lastError };
}
