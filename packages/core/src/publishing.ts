import type { App } from './app.js';
import type { Published } from './broker.js';
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
  const out: (Published | undefined)[] = new Array(messages.length);
  if (!conn.broker.capabilities.sharedDedup && conn.results.capabilities.shared) {
    const owners = await Promise.all(
      messages.map((m) => (m.idempotencyKey === null ? m.id : conn.results.reserveKey({ queue: m.queue, key: m.idempotencyKey }, m.id, keyTtlMs(app, m, now)))),
    );
    owners.forEach((owner, i) => {
      if (owner !== messages[i]!.id) out[i] = { id: owner, duplicate: true };
    });
  }
  // One publish per key lifetime (usually one: a batch mostly shares its delay).
  const groups = new Map<number, number[]>();
  messages.forEach((m, i) => {
    if (out[i]) return;
    const ttl = keyTtlMs(app, m, now);
    const group = groups.get(ttl);
    if (group) group.push(i);
    else groups.set(ttl, [i]);
  });
  await Promise.all(
    [...groups].map(async ([ttl, indexes]) => {
      const published = await conn.broker.publish(
        indexes.map((i) => messages[i]!),
        { keyTtlMs: ttl },
      );
      published.forEach((p, k) => (out[indexes[k]!] = p));
    }),
  );
  return out as Published[];
}

function keyTtlMs(app: App, message: TaskMessage, now: number): number {
  const base = app.options.idempotencyTtlMs;
  return message.idempotencyKey === null || message.eta === null ? base : base + Math.max(0, message.eta - now);
}
