import type { z } from 'zod';
import type { Broker } from './broker.js';
import { connectBroker, connectResults, isSharedBroker } from './connect.js';
import { BackendError, ValidationError } from './errors.js';
import { silentLogger, type Logger } from './logger.js';
import { assertTaskName } from './names.js';
import { appOptionsSchema, parseOptions, taskOptionsSchema } from './options.js';
import type { ResultBackend } from './results.js';
import { Schedule, type ScheduleDefinition } from './schedule.js';
import { Control } from './control/control.js';
import { Inspect } from './control/inspect.js';
import { Task, type TaskHandler } from './task.js';

const MAX_SCHEDULE_NAME = 180;

export interface AppOptions {
  /** `memory://`, `redis://…`, `rediss://…`, `amqp://…`, `amqps://…`, or a `Broker` instance. */
  broker: string | Broker;
  /** Where results go: a URL or a `ResultBackend`; default: the broker's own store. */
  results?: string | ResultBackend;
  /** Queue for tasks that name none (default `default`). */
  defaultQueue?: string;
  /** How long final results are kept (default 24 h). */
  resultTtlMs?: number;
  /** How long an idempotency key's record is kept, after the task's own result (default 24 h). */
  idempotencyTtlMs?: number;
  /** How long an `enqueue` may wait for the broker before it rejects (default 10 s). */
  enqueueTimeoutMs?: number;
  /** Largest encoded task message in bytes (default 1 MiB): refused at enqueue, dead-lettered on arrival. */
  maxMessageBytes?: number;
  /**
   * Which result records keep the task's payload, shown by `inspect.task` and the dashboard:
   * `failures` (default: failed, expired and revoked tasks; successes do no extra work), `always`,
   * or `never`. A payload whose JSON exceeds 64 KiB is not kept (`payloadOmitted: 'too large'`).
   */
  keepPayload?: 'failures' | 'always' | 'never';
  /** Dead letters kept per queue (default 10,000, for 7 days); older or extra ones are dropped. */
  deadLetters?: { maxCount?: number; maxAgeMs?: number };
  logger?: Logger;
}

export interface Connection {
  broker: Broker;
  results: ResultBackend;
}

export interface TaskDefinition<I extends z.ZodType, R> {
  input: I;
  /** Checks the handler's return value before it is stored. */
  output?: z.ZodType<R>;
  queue?: string;
  retry?: z.input<typeof taskOptionsSchema>['retry'];
  timeoutMs?: number;
  priority?: number;
  /** Store successful results (default true); turn off for fire-and-forget tasks nobody awaits. */
  keepResult?: boolean;
}

/**
 * The app: the task registry plus a lazily opened connection.
 * 1. Registers tasks by name (`app.task`), refusing duplicates and bad names.
 * 2. Connects the broker and result store on first use, once, from URLs or instances.
 * 3. Closes what it opened.
 */
export class App {
  readonly options: z.output<typeof appOptionsSchema>;
  readonly logger: Logger;
  /** Steering a running system: revoke, pause, resume (see `Control`). */
  readonly control: Control = new Control(this);
  /** Seeing a running system: queues, workers, tasks, schedules, dead letters (see `Inspect`). */
  readonly inspect: Inspect = new Inspect(this);
  readonly #tasks = new Map<string, Task>();
  readonly #schedules = new Map<string, Schedule>();
  readonly #broker: string | Broker;
  readonly #results: string | ResultBackend | undefined;
  #connection: Promise<Connection> | undefined;

  constructor(options: AppOptions) {
    const { broker, results, logger, ...rest } = options ?? ({} as AppOptions);
    if (typeof broker !== 'string' && (typeof broker !== 'object' || broker === null)) {
      throw new ValidationError('INVALID_OPTIONS', 'createApp: broker is required: a URL such as "memory://" or "redis://127.0.0.1:6379", or a Broker instance');
    }
    this.options = parseOptions(appOptionsSchema, rest, 'createApp options');
    this.#broker = broker;
    this.#results = results;
    this.logger = logger ?? silentLogger;
  }

  task<I extends z.ZodType, R>(name: string, definition: TaskDefinition<I, R>, handler: TaskHandler<z.output<I>, R>): Task<I, Awaited<R>> {
    assertTaskName(name);
    if (this.#tasks.has(name)) throw new ValidationError('INVALID_OPTIONS', `task "${name}" is already registered in this app; task names must be unique`);
    const { input, output, ...rest } = definition ?? ({} as TaskDefinition<I, R>);
    if (!input || typeof (input as { safeParse?: unknown }).safeParse !== 'function') {
      throw new ValidationError('INVALID_OPTIONS', `task "${name}": input must be a zod schema, e.g. { input: z.object({ a: z.number() }) }`);
    }
    if (typeof handler !== 'function') throw new ValidationError('INVALID_OPTIONS', `task "${name}": the handler must be a function`);
    const options = parseOptions(taskOptionsSchema, rest, `options for task "${name}"`);
    const task = new Task(this, name, { ...options, queue: options.queue ?? this.options.defaultQueue }, input, output, handler);
    this.#tasks.set(name, task as unknown as Task);
    return task as unknown as Task<I, Awaited<R>>;
  }

  /**
   * Registers a periodic task, run by `celeriac beat` (or `celeriac worker --beat`). The cron
   * expression, time zone and payload are checked here, so a mistake fails at startup.
   */
  schedule<I extends z.ZodType>(name: string, definition: ScheduleDefinition<I>): Schedule {
    assertTaskName(name);
    // Its ticks' task ids are `beat:<name>:<epoch ms>` and ids are at most 200 characters.
    if (name.length > MAX_SCHEDULE_NAME) throw new ValidationError('INVALID_NAME', `schedule name "${name.slice(0, 20)}…" is ${name.length} characters; the most is ${MAX_SCHEDULE_NAME}`);
    if (this.#schedules.has(name)) throw new ValidationError('INVALID_OPTIONS', `schedule "${name}" is already registered; schedule names must be unique`);
    const { task, payload, options, ...timing } = definition ?? ({} as ScheduleDefinition<I>);
    if (!task || this.#tasks.get(task.name) !== (task as unknown as Task)) {
      throw new ValidationError('INVALID_OPTIONS', `schedule "${name}": task must be a task registered in this app with app.task(…)`);
    }
    try {
      task.checkPayload(payload);
    } catch (err) {
      throw new ValidationError('INVALID_PAYLOAD', `schedule "${name}": ${(err as Error).message}`);
    }
    const schedule = new Schedule(name, task as unknown as Task, payload, options ?? {}, timing);
    this.#schedules.set(name, schedule);
    return schedule;
  }

  get schedules(): ReadonlyMap<string, Schedule> {
    return this.#schedules;
  }

  getTask(name: string): Task | undefined {
    return this.#tasks.get(name);
  }

  get tasks(): ReadonlyMap<string, Task> {
    return this.#tasks;
  }

  /** The queues this app's tasks go to (what a worker listens on by default). */
  get queues(): string[] {
    return [...new Set([this.options.defaultQueue, ...[...this.#tasks.values()].map((t) => t.options.queue)])];
  }

  /** Opens the broker and result store once; every caller shares the same promise. */
  readonly connection = (): Promise<Connection> => {
    this.#connection ??= this.#open().catch((err) => {
      this.#connection = undefined;
      throw err;
    });
    return this.#connection;
  };

  /**
   * Closes the broker and result store this app opened from URLs. Instances you passed in are
   * yours to close (they may serve other apps), and so is a shared `memory://name` broker.
   */
  async close(): Promise<void> {
    const pending = this.#connection;
    this.#connection = undefined;
    if (!pending) return;
    const { broker, results } = await pending;
    try {
      if (typeof this.#results === 'string') await results.close();
    } finally {
      if (typeof this.#broker === 'string' && !isSharedBroker(broker)) await broker.close();
    }
  }

  async #open(): Promise<Connection> {
    const { maxMessageBytes, deadLetters, enqueueTimeoutMs: publishTimeoutMs } = this.options;
    const broker = typeof this.#broker === 'string' ? await connectBroker(this.#broker, { maxMessageBytes, deadLetters, publishTimeoutMs }) : this.#broker;
    const closeOwnBroker = async () => {
      if (typeof this.#broker === 'string' && !isSharedBroker(broker)) await broker.close().catch(() => {});
    };
    let results: ResultBackend | null;
    try {
      results = this.#results === undefined ? broker.results : typeof this.#results === 'string' ? await connectResults(this.#results) : this.#results;
    } catch (err) {
      await closeOwnBroker();
      throw err;
    }
    if (!results) {
      await closeOwnBroker();
      throw new BackendError('this broker keeps no results: pass createApp({ results: "redis://…" }) or a ResultBackend');
    }
    return { broker, results };
  }
}

/** Creates an app. Connections open lazily, on the first enqueue or worker start. */
export function createApp(options: AppOptions): App {
  return new App(options);
}
