import type { App } from './app.js';
import type { Broker, Published } from './broker.js';
import type { TaskMessage } from './envelope.js';

/**
 * The publish side of the idempotency rules.
 * 1. A key lives until its task's eta + `idempotencyTtlMs`: a task delayed past the TTL keeps it.
 * 2. Where the broker's dedup holds per process only (`sharedDedup: false`, RabbitMQ) and the store
 *    is shared, keys are reserved in the store first; a key already pointing at a task is a
 *    duplicate, returned without publishing.
 */
export async function publishMessages(app: App, messages: readonly TaskMessage[], now: number): Promise<Published[]> {
  const conn = await app.connection();
  if (conn.broker.capabilities.sharedDedup || !conn.results.capabilities.shared || messages.every((m) => m.idempotencyKey === null)) {
    return publishByKeyTtl(app, conn.broker, messages, now);
  }
  const owners = await Promise.all(
    messages.map((m) => (m.idempotencyKey === null ? m.id : conn.results.reserveKey({ queue: m.queue, key: m.idempotencyKey }, m.id, keyTtlMs(app, m, now)))),
  );
  const fresh = messages.filter((m, i) => owners[i] === m.id);
  const published = await publishByKeyTtl(app, conn.broker, fresh, now);
  let next = 0;
  return messages.map((m, i) => (owners[i] === m.id ? published[next++]! : { id: owners[i]!, duplicate: true }));
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
