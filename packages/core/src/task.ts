import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { App } from './app.js';
import type { TaskMessage } from './envelope.js';
import { BackendError, describeIssues, ValidationError } from './errors.js';
import { publishMessages } from './publishing.js';
import { TaskHandle } from './handle.js';
import type { Logger } from './logger.js';
import { enqueueOptionsSchema, parseOptions, type EnqueueOptions, type TaskOptions } from './options.js';

/**
 * A broker opened from a URL gives up on a publish at `enqueueTimeoutMs` itself
 * (`BrokerOptions.publishTimeoutMs`), with an error that says whether it was sent, and cleans up
 * after it (its own dedup tables included) before it rejects. Core's timer is the net for a broker
 * that does not (an instance you built), so it fires this much later.
 */
const ENQUEUE_NET_MS = 1_000;

/** What a handler gets besides its input. */
export interface TaskContext {
  id: string;
  task: string;
  queue: string;
  /** 1 on the first run, 2 on the first retry, … */
  attempt: number;
  maxAttempts: number;
  idempotencyKey: string | null;
  /** Aborted when the time limit passes, the lease is lost, or the worker stops at once. */
  signal: AbortSignal;
  log: Logger;
  /**
   * Reports progress (any JSON value, e.g. `{ done: 40, total: 100 }`), readable from any process
   * with `handle.progress()`; kept as long as the result. Needs a shared store: on RabbitMQ alone
   * it rejects with a `ControlUnavailableError`.
   */
  progress(value: unknown): Promise<void>;
}

export type TaskHandler<In, Out> = (input: In, ctx: TaskContext) => Out | Promise<Out>;

/** A registered task: enqueue it with typed input; a worker runs its handler. */
export class Task<I extends z.ZodType = z.ZodType, R = unknown> {
  constructor(
    readonly app: App,
    readonly name: string,
    readonly options: TaskOptions & { queue: string },
    readonly input: I,
    readonly output: z.ZodType<R> | undefined,
    readonly handler: TaskHandler<z.output<I>, R>,
  ) {}

  /** Validates `payload` (as it will travel: JSON) and publishes it. Resolves once the broker has it. */
  async enqueue(payload: z.input<I>, options?: EnqueueOptions): Promise<TaskHandle<R>> {
    const [handle] = await this.enqueueMany([{ payload, ...(options ? { options } : {}) }]);
    return handle!;
  }

  /**
   * Publishes many tasks in one broker round trip (all or none are validated before any is sent).
   * Rejects with a `BackendError` after `enqueueTimeoutMs` (+1 s) if the broker has not confirmed;
   * keyed tasks on a broker whose dedup is per process (RabbitMQ with a shared store) may take up
   * to twice that, while their keys are given back.
   */
  async enqueueMany(items: readonly { payload: z.input<I>; options?: EnqueueOptions }[]): Promise<TaskHandle<R>[]> {
    const now = Date.now();
    const messages = items.map((item) => this.#message(item.payload, item.options, now));
    const timeoutMs = this.app.options.enqueueTimeoutMs;
    const what = messages.length === 1 ? `task ${messages[0]!.id}` : `${messages.length} tasks`;
    // A keyed enqueue that ran out of time gives its keys back first (bounded by timeoutMs again).
    const published = await publishMessages(this.app, messages, now, {
      timeoutMs: timeoutMs + ENQUEUE_NET_MS,
      onTimeout: () =>
        new BackendError(
          `the broker did not confirm the enqueue of ${what} within ${timeoutMs} ms (enqueueTimeoutMs): it may or may not have been enqueued; ` +
            'enqueueing again with the same `id` or `idempotencyKey` is safe: the task still takes effect once',
        ),
    });
    return published.map((p, i) => new TaskHandle<R>(this.app, p.id, messages[i]!.queue, this.name, p.duplicate));
  }

  /** A handle for a task enqueued elsewhere (e.g. an id sent to a browser). */
  handle(id: string, queue: string = this.options.queue): TaskHandle<R> {
    return new TaskHandle<R>(this.app, id, queue, this.name);
  }

  #message(payload: unknown, options: EnqueueOptions | undefined, now: number): TaskMessage {
    const o = options === undefined ? {} : parseOptions(enqueueOptionsSchema, options, `enqueue options for task "${this.name}"`);
    return {
      v: 1,
      id: o.id ?? randomUUID(),
      task: this.name,
      queue: o.queue ?? this.options.queue,
      payload: this.checkPayload(payload),
      attempt: 1,
      maxAttempts: this.options.retry.maxAttempts,
      eta: o.eta ?? (o.delayMs ? now + o.delayMs : null),
      expiresAt: o.expiresAt ?? (o.expiresInMs !== undefined ? now + o.expiresInMs : null),
      priority: o.priority ?? this.options.priority,
      idempotencyKey: o.idempotencyKey ?? null,
      trace: o.trace ?? {},
      createdAt: now,
      lastError: null,
    };
  }

  /**
   * The payload as it will travel, checked against the input schema. The worker sees it after a
   * JSON round trip, so that is what is validated: a Date or a Map that would not survive the wire
   * fails now, at the caller, not later in a worker. Throws a ValidationError naming the field.
   */
  checkPayload(payload: unknown): z.core.util.JSONType {
    let wire: z.core.util.JSONType;
    try {
      wire = JSON.parse(JSON.stringify(payload ?? null));
    } catch (err) {
      throw new ValidationError('INVALID_PAYLOAD', `payload for task "${this.name}" is not JSON-serialisable: ${(err as Error).message}`);
    }
    const parsed = this.input.safeParse(wire);
    if (!parsed.success) {
      throw new ValidationError('INVALID_PAYLOAD', `invalid payload for task "${this.name}": ${describeIssues(parsed.error)}${dateHint(parsed.error.issues)}`);
    }
    return wire;
  }
}

/** A Date reaches the schema as the ISO string JSON made of it, which `z.date()` never accepts. */
function dateHint(issues: readonly { code: string; expected?: unknown }[]): string {
  if (!issues.some((i) => i.code === 'invalid_type' && i.expected === 'date')) return '';
  return ' (a Date travels as an ISO string: use z.coerce.date() to get a Date back in the handler, or z.iso.datetime() to keep the string)';
}
