import { BackendError } from '@celeriac/core';
import { Cluster, type RedisOptions } from 'ioredis';
import { SILENT_PEER_MS, duplicate, quitWithin } from './connection.js';
import { Scripts, type Client, type ScriptName } from './scripts.js';

/**
 * Longest a producer-path command may go unanswered when no `BrokerOptions.publishTimeoutMs` is
 * given (the app passes its `enqueueTimeoutMs`). Past it the connection is abandoned
 * (disconnected for good, so nothing queued on it is ever written) and a fresh one serves the
 * next call.
 */
export const PRODUCER_BOUND_MS = 8_000;

/**
 * ioredis settings of the producer connection. A brief drop (one reconnect) is ridden through
 * and an unanswered command resent once (publish dedups by id: a resend creates nothing). After
 * two failed reconnect attempts in a row ioredis rejects the waiting commands and drops them from
 * its queues (maxRetriesPerRequest: 1): about 2.2 s when Redis refuses connections (down), each
 * attempt bounded by connectTimeout, at most 1.1 s apart. A connection that answers nothing for
 * SILENT_PEER_MS (silent) is dropped and redialled, as the main one is (connection.ts). No
 * commandTimeout: ioredis would reject the caller and still send the command later. What ioredis cannot bound (a command in flight when a
 * connection drops and the redial reaches a listener that never answers is kept for resending
 * indefinitely), PRODUCER_BOUND_MS does.
 */
const PRODUCER_OPTIONS = { maxRetriesPerRequest: 1, connectTimeout: 2_000, socketTimeout: SILENT_PEER_MS, enableOfflineQueue: true, lazyConnect: true } as const;
const producerRetry = (times: number) => Math.min(100 * 2 ** Math.min(times, 4), 1_000) + Math.floor(Math.random() * 100);

/**
 * The producer path (publish, reserveKey).
 * 1. Runs its scripts on a connection of its own, opened on first use (a worker that never
 *    publishes opens none); the worker path (fetch, settle, renew) keeps the main connection,
 *    which waits out outages and reconnects forever with capped backoff.
 * 2. Settles every call within PRODUCER_BOUND_MS, and never writes a command after rejecting it:
 *    an unanswered call abandons its connection.
 * 3. Says what a failure means for the caller (ioredis' own words say only "max retries").
 */
export class ProducerLink {
  readonly #main: Client;
  #client: Client | undefined;
  #scripts: Scripts | undefined;
  #closed = false;

  constructor(main: Client, readonly boundMs = PRODUCER_BOUND_MS) {
    this.#main = main;
  }

  /** Runs a script; `what` names the operation in errors ("publishing 3 message(s) to queue q"). */
  async run(name: ScriptName, keys: readonly string[], args: (string | number)[], what: string): Promise<unknown> {
    if (this.#closed) throw new BackendError(`${what} failed: the broker is closed`);
    const client = this.#connection();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#abandon(client);
        reject(new BackendError(`${what} failed: Redis did not answer within ${this.boundMs} ms. ${UNSENT}`));
      }, this.boundMs);
    });
    try {
      return await Promise.race([this.#scripts!.run(name, keys, args), bound]);
    } catch (err) {
      if (err instanceof BackendError) throw err;
      throw new BackendError(describe(what, err as Error), { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#client) await quitWithin(this.#client);
  }

  #connection(): Client {
    if (this.#client) return this.#client;
    const options = { ...PRODUCER_OPTIONS, retryStrategy: producerRetry };
    const client = this.#main instanceof Cluster ? duplicate(this.#main, { ...options, clusterRetryStrategy: producerRetry } as Partial<RedisOptions>) : duplicate(this.#main, options);
    this.#scripts = new Scripts(client);
    return (this.#client = client);
  }

  /** Disconnects for good (ioredis writes nothing more on it); the next call dials afresh. */
  #abandon(client: Client): void {
    if (this.#client === client) {
      this.#client = undefined;
      this.#scripts = undefined;
    }
    client.disconnect();
  }
}

const UNSENT =
  'The command will not be sent again; if it reached Redis before the connection dropped it took effect ' +
  '(enqueueing again with the same task id is then absorbed as a duplicate)';

function describe(what: string, err: Error): string {
  if (err.name === 'MaxRetriesPerRequestError' || /Connection is closed|enableOfflineQueue/.test(err.message)) {
    return `${what} failed: Redis did not answer (the connection dropped and was not restored in time). ${UNSENT}`;
  }
  return `${what} failed: ${err.message}`;
}
