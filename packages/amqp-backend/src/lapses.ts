import type { Message } from 'amqplib';

/**
 * Counting `Delivery.lapses` on RabbitMQ: deliveries of a message's current attempt that died
 * unsettled (the consumer crashed, hung past its lease, or was cut off).
 *
 * What RabbitMQ tells us: a quorum queue counts returns in `x-delivery-count`; a classic queue only
 * sets `redelivered`, once, whatever the number of returns. So the count lives in the message too:
 * header `x-celeriac-lapses` holds the lapses counted when this copy was published, and an arrival's
 * lapses are that header plus what happened to this copy since:
 * - quorum: `x-delivery-count` (every return of this copy);
 * - classic: 1 when `redelivered` — and such an arrival is republished with the new count before
 *   it runs (rotated into this client's hold queue, see Rotator), so a further death of it shows
 *   up again instead of hiding behind a flag already set;
 * - a copy that died in a hold queue (its client crashed, its lease lapsed there, or its rotation
 *   was given up) comes back to the work queue dead-lettered from the hold queue (`x-death`, reason
 *   `expired` or `rejected`): 1 per such death. Nothing else leaves a hold queue that way.
 * Our own give-backs that are not deaths (release, an idle consumer's unstarted buffer, close) are
 * republished with the header instead of nacked, so they do not count. `retry` starts a new attempt:
 * the header goes.
 * Over-counting that remains: a message prefetched but not started when its consumer's connection
 * dropped counts one lapse (RabbitMQ cannot tell it from a started one).
 */
export const LAPSES_HEADER = 'x-celeriac-lapses';

/** The lapses of an arrival (see above). */
export function lapsesOf(msg: Message, quorum: boolean): number {
  const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
  const inHold = holdDeaths(headers);
  const since = quorum ? count(headers['x-delivery-count']) : 0;
  // On a classic queue a copy dead-lettered from a hold queue arrives flagged `redelivered` too:
  // the flag then says nothing more (the death is the x-death entry).
  const flagged = !quorum && inHold === 0 && msg.fields.redelivered ? 1 : 0;
  return count(headers[LAPSES_HEADER]) + inHold + since + flagged;
}

/**
 * True when a classic-queue arrival's count must be written into the message before it runs: the
 * `redelivered` flag or a hold queue's `x-death` would not show a further death. (Quorum queues
 * count every return in `x-delivery-count`: nothing to write.)
 */
export function mustRewrite(msg: Message, quorum: boolean): boolean {
  return !quorum && (msg.fields.redelivered || holdDeaths((msg.properties.headers ?? {}) as Record<string, unknown>) > 0);
}

function holdDeaths(headers: Record<string, unknown>): number {
  const deaths = headers['x-death'];
  let n = 0;
  if (Array.isArray(deaths)) {
    for (const d of deaths as { queue?: unknown; count?: unknown }[]) if (typeof d.queue === 'string' && d.queue.includes(':hold:')) n += count(d.count);
  }
  return n;
}

/**
 * Headers for a republished copy: RabbitMQ's bookkeeping of the old copy removed (it would be
 * counted twice), and the lapses of the attempt carried over (`undefined`/0: a new attempt, none).
 */
export function copyHeaders(headers: Record<string, unknown> | undefined, lapses: number | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(headers ?? {}) };
  for (const k of ['x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason', 'x-delivery-count', LAPSES_HEADER]) delete out[k];
  if (lapses) out[LAPSES_HEADER] = lapses;
  return out;
}

function count(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : typeof v === 'bigint' ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}
