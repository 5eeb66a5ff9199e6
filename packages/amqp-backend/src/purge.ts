import type { Link } from './link.js';
import { onQueue } from './stats.js';
import { DELAY_LEVELS, delayQueue, workQueue } from './names.js';

/**
 * Purges what RabbitMQ holds ready for `queue` (Broker rule 10): its work queue and every rung of
 * its delay ladder. Unacked messages stay: the deliveries leased by consumers, and what consumers
 * prefetched and have not handed out yet (this process drops its own buffer first, see
 * `Intake.drop`; other processes' buffers, at most their prefetch each, still run).
 * Resolves with how many RabbitMQ removed.
 */
export async function purgeQueues(link: Link, queue: string): Promise<number> {
  const names = [workQueue(queue), ...Array.from({ length: DELAY_LEVELS }, (_, k) => delayQueue(queue, k))];
  const counts = await Promise.all(names.map((name) => purgeIfExists(link, name)));
  return counts.reduce((a, b) => a + b, 0);
}

function purgeIfExists(link: Link, name: string): Promise<number> {
  return onQueue(link, async (ch) => (await ch.purgeQueue(name)).messageCount, 0);
}
