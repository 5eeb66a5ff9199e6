import type { DeadLetter, QueueStats } from '@celeriac/core';
import type { Channel } from 'amqplib';
import { letterOf } from './dead.js';
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

// A passive declare of a missing queue closes its channel with 404: one throwaway channel each.
async function count(link: Link, name: string): Promise<number> {
  try {
    return await link.withChannel(async (ch) => (await ch.checkQueue(name)).messageCount);
  } catch (err) {
    if (/NOT_FOUND|404/.test(String((err as Error).message))) return 0;
    throw err;
  }
}

/**
 * Reads up to `limit` dead letters, oldest first, without removing them: `basic.get` without ack
 * on a throwaway channel whose close hands them all back in place.
 */
export async function readDeadLetters(link: Link, queue: string, limit: number): Promise<DeadLetter[]> {
  try {
    return await link.withChannel(async (ch: Channel) => {
      await ch.checkQueue(deadQueue(queue));
      const out: DeadLetter[] = [];
      while (out.length < limit) {
        const msg = await ch.get(deadQueue(queue), { noAck: false });
        if (!msg) break;
        out.push(letterOf(msg));
      }
      return out;
    });
  } catch (err) {
    if (/NOT_FOUND|404/.test(String((err as Error).message))) return [];
    throw err;
  }
}
