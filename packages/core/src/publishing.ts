import type { App } from './app.js';
import type { Broker, Published } from './broker.js';
import type { TaskMessage } from './envelope.js';
import type { ResultBackend } from './results.js';
import { withTimeout } from './timeout.js';
import { noteQueues } from './control/registry.js';

/**
 * The publish side of the idempotency rules.
 * 1. A key lives until its task's eta + `idempotencyTtlMs`: a task delayed past the TTL keeps it.
 * 2. Where the broker's dedup holds per process only (`sharedDedup: false`, RabbitMQ) and the store
 *    is shared, keys are reserved in the store first; a key already pointing at a task is a
 *    duplicate, returned without publishing.
 * 3. A publish that fails gives back the keys it reserved (`unreserveKey`, a compare-and-delete).
 */
export async function publishMessages(app: App, messages: readonly TaskMessage[], now: number, bound: PublishBound): Promise<Published[]> {
  const deadline = Date.now() + bound.timeoutMs;
  const conn = await withTimeout(app.connection(), bound.timeoutMs, bound.onTimeout);
  const left = () => Math.max(0, deadline - Date.now());
  noteQueues(app, conn.results.coordination, queuesOf(messages));
  if (conn.broker.capabilities.sharedDedup || !conn.results.capabilities.shared || messages.every((m) => m.idempotencyKey === null)) {
    return withTimeout(publishByKeyTtl(app, conn.broker, messages, now), left(), bound.onTimeout);
  }
  const store = conn.results;
  const reservations = Promise.allSettled(
    messages.map((m) => (m.idempotencyKey === null ? m.id : store.reserveKey({ queue: m.queue, key: m.idempotencyKey }, m.id, keyTtlMs(app, m, now)))),
  );
  let timedOut = false;
  try {
    return await withTimeout(reservations.then((answers) => publishReserved(app, conn.broker, messages, answers, now)), left(), () => {
      timedOut = true;
      return bound.onTimeout();
    });
  } catch (err) {
    if (!timedOut) throw err; // publishReserved gave the keys back
    // Unconfirmed in time: the caller is told it may enqueue again, so the keys go back now (those
    // still being reserved, once they are). If the publish lands after all, a retry makes a second
    // task under the key; the consume-side key claim still runs the handler once.
    const undo = reservations.then((answers) => unreserve(app, store, reservedBy(messages, answers)));
    await withTimeout(undo, bound.timeoutMs, () => new Error('unreserve timed out')).catch((undoErr: unknown) =>
      app.logger.error(
        { err: String(undoErr) },
        'could not give back the idempotency keys of an enqueue that timed out: enqueues with these keys are told "duplicate" of a task that may never have been published until the keys expire',
      ),
    );
    throw err;
  }
}

/** The enqueue's bound: `enqueueTimeoutMs`, and the error an enqueue that ran out of it rejects with. */
export interface PublishBound {
  timeoutMs: number;
  onTimeout: () => Error;
}

/** Publishes the messages whose key this call reserved (or that have none); a failure gives the keys back. */
async function publishReserved(
  app: App,
  broker: Broker,
  messages: readonly TaskMessage[],
  answers: PromiseSettledResult<string>[],
  now: number,
): Promise<Published[]> {
  const store = (await app.connection()).results;
  const owners = answers.map((a) => (a.status === 'fulfilled' ? a.value : null));
  // Nobody may be told "duplicate" of a task that never reached the broker.
  const failed = answers.find((a): a is PromiseRejectedResult => a.status === 'rejected');
  if (failed) {
    await unreserve(app, store, reservedBy(messages, answers));
    throw failed.reason;
  }
  const fresh = messages.filter((m, i) => owners[i] === m.id);
  let published: Published[];
  try {
    published = await publishByKeyTtl(app, broker, fresh, now);
  } catch (err) {
    await unreserve(app, store, reservedBy(messages, answers));
    throw err;
  }
  let next = 0;
  return messages.map((m, i) => (owners[i] === m.id ? published[next++]! : { id: owners[i]!, duplicate: true }));
}

/** The messages whose key was reserved for them by these answers. */
function reservedBy(messages: readonly TaskMessage[], answers: PromiseSettledResult<string>[]): TaskMessage[] {
  return messages.filter((m, i) => {
    const a = answers[i]!;
    return m.idempotencyKey !== null && a.status === 'fulfilled' && a.value === m.id;
  });
}

/** Undoes `reserveKey` for `messages` (compare-and-delete, rule 7); a store that fails here leaves the key to its TTL, which is logged. */
async function unreserve(app: App, store: ResultBackend, messages: readonly TaskMessage[]): Promise<void> {
  await Promise.all(
    messages.map((m) =>
      store.unreserveKey({ queue: m.queue, key: m.idempotencyKey! }, m.id).catch((err: unknown) =>
        app.logger.error(
          { taskId: m.id, idempotencyKey: m.idempotencyKey, err: String(err) },
          'could not give back the idempotency key of a publish that failed: enqueues with this key are told "duplicate" of a task that was never published until the key expires',
        ),
      ),
    ),
  );
}

/** One publish per key lifetime: one call unless keyed tasks of the batch are delayed differently. */
async function publishByKeyTtl(app: App, broker: Broker, messages: readonly TaskMessage[], now: number): Promise<Published[]> {
  const base = app.options.idempotencyTtlMs;
  if (messages.every((m) => keyTtlMs(app, m, now) === base)) return messages.length === 0 ? [] : broker.publish(messages, { keyTtlMs: base });
  const groups = new Map<number, number[]>();
  messages.forEach((m, i) => {
    const ttl = keyTtlMs(app, m, now);
    const group = groups.get(ttl);
    if (group) group.push(i);
    else groups.set(ttl, [i]);
  });
  const out: Published[] = new Array(messages.length);
  await Promise.all(
    [...groups].map(async ([ttl, indexes]) => {
      const published = await broker.publish(
        indexes.map((i) => messages[i]!),
        { keyTtlMs: ttl },
      );
      published.forEach((p, k) => (out[indexes[k]!] = p));
    }),
  );
  return out;
}

function keyTtlMs(app: App, message: TaskMessage, now: number): number {
  const base = app.options.idempotencyTtlMs;
  return message.idempotencyKey === null || message.eta === null || message.eta <= now ? base : base + (message.eta - now);
}

/** The distinct queues of a batch (most batches have one: no Set for them). */
function queuesOf(messages: readonly TaskMessage[]): string[] {
  const first = messages[0]?.queue;
  if (first === undefined) return [];
  return messages.every((m) => m.queue === first) ? [first] : [...new Set(messages.map((m) => m.queue))];
}
