import { parseOptions } from '@celeriac/core';
import { z } from 'zod';
import { parseEndpoint } from './endpoint.js';

const int = (min: number) => z.number().int().min(min);

export const amqpOptionsSchema = z
  .object({
    /** Queues declared as quorum queues (`x-queue-type: quorum`); the rest are classic with `x-max-priority: 9`. */
    quorumQueues: z.array(z.string()).default([]),
    /**
     * `x-max-priority` of classic work queues (1–9; default 9, celeriac's range). 0 declares plain
     * classic queues: no priorities, a little faster. Must match how existing queues were declared.
     */
    maxPriority: int(0).max(9).default(9),
    /**
     * AMQP heartbeat in seconds, used when the URL has no `heartbeat` parameter (the URL wins). A dead
     * or frozen peer is noticed within about 2× this on both sides; 0 turns heartbeats off.
     */
    heartbeatS: int(0).default(15),
    /**
     * A publish not confirmed within this many ms is given up: rejected with an error that says
     * whether it may have reached RabbitMQ, and never sent (or sent again) afterwards. Keep it ≤ the
     * app's `enqueueTimeoutMs` (`connectBroker` uses that when given).
     */
    publishTimeoutMs: int(1).default(10_000),
    /** First reconnect delay; doubles up to `reconnectMaxMs`. */
    reconnectMinMs: int(1).default(100),
    reconnectMaxMs: int(1).default(10_000),
    /**
     * A delivery held unacked longer than this is rotated (republished to a holding queue this
     * process consumes, then acked), so long tasks never trip RabbitMQ's `consumer_timeout`
     * (default 30 min). Keep it well below the server's timeout.
     */
    rotateAfterMs: int(1).default(10 * 60_000),
    /** How long the per-client reply queue outlives its client (its `x-expires`). */
    replyQueueExpiresMs: int(1_000).default(60 * 60_000),
    /**
     * Name this client's reply queue in every task it publishes, so workers send results back
     * (default). `false` for fire-and-forget producers: no reply queue, no result messages, and
     * `handle.result()` waits in vain unless a result store (`results: 'redis://…'`) is used.
     */
    replies: z.boolean().default(true),
    /** Most task ids remembered for publish deduplication in this process. */
    dedupIds: int(0).default(100_000),
  })
  .strict();

export type AmqpOptions = z.input<typeof amqpOptionsSchema>;
export type ParsedAmqpOptions = z.output<typeof amqpOptionsSchema>;

// Query parameters for celeriac's own options; the connection's (heartbeat, TLS files, …) are
// parsed by parseEndpoint, and anything else is refused there with the list of known ones.
const URL_PARAMS: Record<string, (v: string) => [keyof ParsedAmqpOptions, unknown]> = {
  quorum: (v) => ['quorumQueues', v.split(',').filter(Boolean)],
  rotateAfterMs: (v) => ['rotateAfterMs', Number(v)],
  replyQueueExpiresMs: (v) => ['replyQueueExpiresMs', Number(v)],
  maxPriority: (v) => ['maxPriority', Number(v)],
  replies: (v) => ['replies', v !== 'false' && v !== '0'],
  publishTimeoutMs: (v) => ['publishTimeoutMs', Number(v)],
};

/**
 * Splits `amqp://host/vhost?quorum=orders,payments&heartbeat=10` into the connection URL (see
 * parseEndpoint, which it is checked with here so a bad URL fails at construction) and celeriac's
 * own options (explicit `options` win over the URL, except `heartbeatS`: a URL `heartbeat` wins).
 */
export function parseAmqpUrl(url: string, options: AmqpOptions = {}): { url: string; options: ParsedAmqpOptions } {
  const u = new URL(url);
  const fromUrl: Record<string, unknown> = {};
  for (const [name, read] of Object.entries(URL_PARAMS)) {
    const value = u.searchParams.get(name);
    if (value === null) continue;
    const [key, parsed] = read(value);
    fromUrl[key] = parsed;
    u.searchParams.delete(name);
  }
  const parsed = parseOptions(amqpOptionsSchema, { ...fromUrl, ...options }, 'AMQP broker options');
  if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', String(parsed.heartbeatS));
  parseEndpoint(u.toString(), Object.keys(URL_PARAMS));
  return { url: u.toString(), options: parsed };
}
