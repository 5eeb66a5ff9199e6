import { parseMessage, type Delivery, type FetchRequest } from '@celeriac/core';
import { CallTokens } from './calls.js';
import type { KeyCache, QueueKeys } from './keys.js';
import { duplicate } from './connection.js';
import type { Client, Scripts } from './scripts.js';
import { RedisDelivery, type Settler } from './settler.js';

/** Most messages one fetch script call leases (the script's batch limit). */
const MAX_PER_CALL = 1_000;

/** How long past its own timeout a BLPOP may stay unanswered before its connection is cut. */
const BLOCK_GRACE_MS = 2_000;

/** In cluster mode one BLPOP cannot span slots: with several queues each wait is this short, in turn. */
const CLUSTER_MULTI_QUEUE_WAIT_MS = 200;

/**
 * The fetch path.
 * 1. One `fetch` script call per queue promotes due work, reclaims lapsed leases (to the front of
 *    their list, counting the lapse) and leases up to `max` messages: one round trip for a queue.
 * 2. Parses each message with core's `parseMessage` (size limit, queue it arrived on); one that
 *    fails is dead-lettered with the reason, never returned.
 * 3. When nothing is ready, blocks on the queues' wake lists (BLPOP on a connection of its own)
 *    until a publish, or until the next delayed task or lease end it knows of is due.
 * 4. Bounds takeover: a lease taken by another consumer AFTER this fetch went idle wakes nobody,
 *    so no single wait lasts over half the request's `leaseMs`. A lease that lapses is reclaimed
 *    by an idle fetcher at most `1.5 × leaseMs` after its owner's last fetch or renewal. While
 *    work flows, fetchers are woken by markers long before that cap: it only costs an idle
 *    fetcher one look per `leaseMs / 2`.
 * 5. Each call carries a token of its own (the deliveries' tokens derive from it): a call
 *    ioredis resends after a reconnect, whose first execution leased a batch but whose reply was
 *    lost, gets that same batch back rather than leasing more (fetch-7.lua, "Memo").
 * 6. Never drops what it leased: when a script call (or a burial) fails after earlier calls of
 *    the same fetch leased deliveries, the fetch returns those, and the next fetch throws the
 *    error (left unreturned, they would come back after the lease with a lapse each: an attempt
 *    spent without running).
 */
export class Fetcher {
  readonly #client: Client;
  readonly #scripts: Scripts;
  readonly #keys: KeyCache;
  readonly #settler: Settler;
  readonly #blocking: BlockingPool;
  readonly #cluster: boolean;
  /** Delivery tokens are `<call token>.<n>`. */
  readonly #calls = new CallTokens();
  /** Per set of queues, after a fetch left them empty: when the next delayed task or lease is due. */
  readonly #hints = new Map<string, { dueAt: number }>();
  #rotation = 0;
  #closed = false;
  /** A failure that ended a fetch which had already leased something: thrown by the next fetch. */
  #failure: unknown;
  readonly #maxBytes: number;

  constructor(client: Client, scripts: Scripts, keys: KeyCache, settler: Settler, options: { cluster: boolean; maxMessageBytes: number }) {
    this.#client = client;
    this.#scripts = scripts;
    this.#keys = keys;
    this.#settler = settler;
    this.#cluster = options.cluster;
    this.#maxBytes = options.maxMessageBytes;
    this.#blocking = new BlockingPool(client);
  }

  async fetch(request: FetchRequest): Promise<Delivery[]> {
    const deadline = Date.now() + request.waitMs;
    const queues = request.queues.map((q) => this.#keys.of(q));
    const hintKey = request.queues.join('\n');
    const multiCluster = this.#cluster && queues.length > 1;
    // After a fetch that left the queues empty, go straight to BLPOP: ready work always leaves a
    // wake marker (lib/queue.lua), so BLPOP returns at once if there is any. This saves a round
    // trip per delivery for a worker that keeps up with its queue.
    let hint = multiCluster ? undefined : this.#hints.get(hintKey);
    if (this.#failure !== undefined) {
      const failure = this.#failure;
      this.#failure = undefined;
      throw failure;
    }
    for (;;) {
      if (this.#closed || request.signal?.aborted) return [];
      if (!hint || hint.dueAt <= Date.now()) {
        const { deliveries, dueInMs, remaining } = await this.#take(queues, request.max, request.leaseMs);
        hint = { dueAt: Date.now() + dueInMs };
        if (remaining === 0) this.#hints.set(hintKey, hint);
        else this.#hints.delete(hintKey);
        if (deliveries.length > 0) return deliveries;
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.#closed || request.signal?.aborted) return [];
      // Responsibility 4: at most leaseMs / 2 per wait, so a lease that lapses unseen is found.
      let waitMs = Math.min(left, hint.dueAt - Date.now(), request.leaseMs / 2);
      let wakeKeys = queues.map((q) => q.wake);
      if (multiCluster) {
        wakeKeys = [wakeKeys[this.#rotation++ % wakeKeys.length]!];
        waitMs = Math.min(waitMs, CLUSTER_MULTI_QUEUE_WAIT_MS);
      }
      const woken = waitMs > 0 ? await this.#blocking.wait(wakeKeys, waitMs, request.signal) : null;
      // A marker taken by a fetch that will not look any more goes back, for the next fetcher.
      if (woken && (this.#closed || request.signal?.aborted)) await this.#client.lpush(woken, '1').catch(() => {});
      hint = undefined; // woken (or timed out): look
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#blocking.close();
  }

  /** Takes from the queues in turn (a rotating start keeps them of equal standing) until `max`. */
  async #take(queues: QueueKeys[], max: number, leaseMs: number): Promise<{ deliveries: Delivery[]; dueInMs: number; remaining: number }> {
    const deliveries: Delivery[] = [];
    let dueInMs = Infinity;
    let remaining = 0;
    const start = queues.length > 1 ? this.#rotation++ : 0;
    for (let i = 0; i < queues.length && deliveries.length < max; i++) {
      const keys = queues[(start + i) % queues.length]!;
      try {
        const step = await this.#takeFrom(keys, max - deliveries.length, leaseMs, deliveries);
        remaining += step.remaining;
        dueInMs = Math.min(dueInMs, step.dueInMs);
      } catch (err) {
        // Responsibility 6: what earlier calls leased goes to the caller; the error waits.
        if (deliveries.length === 0) throw err;
        this.#failure = err;
        return { deliveries, dueInMs: 0, remaining: 1 };
      }
    }
    // A queue not looked at (max was reached first) may still hold work.
    return { deliveries, dueInMs, remaining: deliveries.length >= max ? Math.max(remaining, 1) : remaining };
  }

  /** One fetch script call on one queue; pushes what it leased onto `into` before burying the malformed. */
  async #takeFrom(keys: QueueKeys, max: number, leaseMs: number, into: Delivery[]): Promise<{ dueInMs: number; remaining: number }> {
    const tokenBase = this.#calls.next();
    const forget = this.#calls.forget(keys.base);
    const reply = (await this.#scripts.run('fetch', keys.main, [keys.base, Math.min(MAX_PER_CALL, max), Math.ceil(leaseMs), tokenBase, forget])) as (string | number | null)[];
    const [now, nextDue, left] = reply as [number, number, number];
    // A call that leased something left a memo (for a resend that can no longer come).
    if (reply.length > 3) this.#calls.answered(keys.base, tokenBase);
    const burials: Promise<void>[] = [];
    for (let at = 3, n = 1; at < reply.length; at += 3, n++) {
      const id = reply[at] as string;
      const raw = reply[at + 1] as string | null;
      if (raw === null) continue; // a resend's delivery that is no longer this call's (fetch-7.lua)
      const token = `${tokenBase}.${n}`;
      const parsed = parseMessage(raw, { queue: keys.queue, maxBytes: this.#maxBytes });
      if (parsed.ok) {
        into.push(new RedisDelivery(parsed.message, token, keys, id, this.#settler, reply[at + 2] as number));
      } else {
        burials.push(this.#settler.submit(keys, id, ['D', id, token, '', '', '', parsed.reason, '']));
      }
    }
    // A malformed message is dead-lettered before fetch returns, so it is never lost in between.
    // (If its burial fails, it stays leased and comes back after the lease, to be buried again.)
    await Promise.all(burials);
    return { dueInMs: nextDue >= 0 ? Math.max(1, nextDue - now + 1) : Infinity, remaining: left };
  }
}

/**
 * Connections for BLPOP: a blocked connection can carry nothing else, so each concurrent wait
 * takes one of its own. Aborting (or closing, or a wait outliving its bound) disconnects it,
 * which ends the BLPOP at once.
 */
class BlockingPool {
  readonly #client: Client;
  readonly #idle: Client[] = [];
  /** Connections in a wait, each with the function that cuts its wait short. */
  readonly #busy = new Map<Client, () => void>();
  #closed = false;

  constructor(client: Client) {
    this.#client = client;
  }

  /** BLPOP on `keys` for up to `ms`; the key a marker was taken from, or null. */
  async wait(keys: string[], ms: number, signal?: AbortSignal): Promise<string | null> {
    if (this.#closed) return null;
    const conn = this.#idle.pop() ?? this.#open();
    let broken = false;
    let cut!: () => void;
    // The wait ends here when it is cut, whatever ioredis does with the command: disconnect()
    // during a reconnect delay stops the reconnecting and leaves the queued BLPOP unsettled for
    // good (seen: a fetch with waitMs 300 hung for over 35 s under repeated connection resets).
    const abandoned = new Promise<null>((resolve) => (cut = () => resolve(null)));
    const onAbort = () => {
      broken = true;
      conn.disconnect();
      cut();
    };
    this.#busy.set(conn, onAbort);
    signal?.addEventListener('abort', onAbort, { once: true });
    // Every wait has a bound: a BLPOP whose connection went silent (a partition) never times out
    // on the server's side, so past its timeout plus a grace the connection is cut here.
    const bound = setTimeout(onAbort, ms + BLOCK_GRACE_MS);
    try {
      // Whole milliseconds, at least a few: Redis reads a timeout under 1 ms as 0, "block forever".
      const pop = conn.blpop(...keys, Math.max(5, Math.ceil(ms)) / 1000);
      pop.catch(() => {}); // a cut wait's command may still fail later: nobody listens any more
      const popped = await Promise.race([pop, abandoned]);
      return popped ? popped[0] : null;
    } catch (err) {
      if (!broken && !this.#closed) throw err;
      return null;
    } finally {
      clearTimeout(bound);
      signal?.removeEventListener('abort', onAbort);
      this.#busy.delete(conn);
      if (!broken && !this.#closed) this.#idle.push(conn);
    }
  }

  close(): void {
    this.#closed = true;
    for (const conn of this.#idle) conn.disconnect();
    for (const onAbort of [...this.#busy.values()]) onAbort();
    this.#idle.length = 0;
  }

  #open(): Client {
    // No retry limit: a wait that outlives a reconnect simply continues on the new connection.
    // No socketTimeout (the main connection's SILENT_PEER_MS): a BLPOP is silent by design until
    // its own timeout; BLOCK_GRACE_MS bounds it instead.
    return duplicate(this.#client, { maxRetriesPerRequest: null, enableAutoPipelining: false, socketTimeout: undefined });
  }
}
