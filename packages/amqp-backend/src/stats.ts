import type { QueueStats } from '@celeriac/core';
import type { Channel, Message } from 'amqplib';
import type { Link } from './link.js';
import { DELAY_LEVELS, deadQueue, delayQueue, workQueue } from './names.js';
import type { Counters } from './settler.js';

/**
 * Queue figures from passive declares — no management plugin needed.
 * `ready`, `delayed` (all ladder rungs) and `dead` are the broker's counts; `ready` adds what this
 * process has prefetched but not handed out (waiting to run, though unacked for RabbitMQ).
 * AMQP does not report unacked messages, so `inFlight` is the leases this process holds, and
 * `completed`/`failed` count settlements made by this process since it started; the management
 * API (when enabled) has the cluster-wide figures.
 */
export async function readStats(link: Link, queue: string, local: { ready: number | null; buffered: number; held: number }, counters: Counters): Promise<QueueStats> {
  const names = [workQueue(queue), deadQueue(queue), ...Array.from({ length: DELAY_LEVELS }, (_, k) => delayQueue(queue, k))];
  const counts = await Promise.all(names.map((name) => count(link, name)));
  const [brokerReady = 0, dead = 0, ...delays] = counts;
  const ready = local.ready ?? brokerReady;
  return {
    queue,
    ready: ready + local.buffered,
    delayed: delays.reduce((a, b) => a + b, 0),
    inFlight: local.held,
    dead,
    completed: counters.completed.get(queue) ?? 0,
    failed: counters.failed.get(queue) ?? 0,
  };
}

/**
 * Runs `work` on a throwaway channel; `absent` when it touched a queue that does not exist (a
 * passive declare, a get or a purge of a missing queue closes its channel with 404).
 */
export async function onQueue<T>(link: Link, work: (ch: Channel) => Promise<T>, absent: T): Promise<T> {
  try {
    return await link.withChannel(work);
  } catch (err) {
    if (/NOT_FOUND|404/.test(String((err as Error).message))) return absent;
    throw err;
  }
}

function count(link: Link, name: string): Promise<number> {
  return onQueue(link, async (ch) => (await ch.checkQueue(name)).messageCount, 0);
}

/**
 * Reads up to `limit` dead letters, oldest first, without removing them: `basic.get` without ack
 * on a throwaway channel whose close hands them all back in place. Stops once their bodies reach
 * `maxBytes` (after at least one): this process holds them, and the broker holds them unacked,
 * where a redrive or discard walking the same queue cannot see them, so a listing is kept short.
 * Each message is turned by `map` as it is read and only what `map` returns is kept: a walk for
 * ids (`letterIdOf`) holds one body at a time, however many letters and bytes the queue has.
 */
export function readDeadLetters<T>(link: Link, queue: string, limit: number, maxBytes: number, map: (msg: Message) => T): Promise<T[]> {
  return onQueue(
    link,
    async (ch) => {
      await ch.checkQueue(deadQueue(queue));
      const out: T[] = [];
      for (let bytes = 0; out.length < limit && bytes < maxBytes; ) {
        const msg = await ch.get(deadQueue(queue), { noAck: false });
        if (!msg) break;
        bytes += msg.content.length;
        out.push(map(msg));
      }
      return out;
    },
    [],
  );
}
