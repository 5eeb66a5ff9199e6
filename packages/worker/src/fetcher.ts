import { BackendError, withTimeout, type App, type Connection, type Delivery, type Logger } from '@celeriac/core';
import type { Executor } from './executor.js';

const MAX_BACKOFF_MS = 5_000;

/**
 * The fetch loop.
 * 1. Asks the broker for as many deliveries as there are free slots (prefetch ≤ concurrency),
 *    blocking on the broker when idle — never polling.
 * 2. Hands each delivery to the executor.
 * 3. On broker errors, backs off exponentially (100 ms … 5 s) and tries again; a fetch that does
 *    not answer within `blockMs + leaseMs` is such an error. An outage is logged once as a warning
 *    (the following failures at debug, so a long one does not flood the log), and its end once.
 * 4. Stops when aborted; deliveries that arrive after the stop are given back unstarted.
 * 5. Skips paused queues (`paused()`, the control state): while all are paused it waits, checking
 *    again every `pausePollMs`; a delivery of a queue paused while its fetch blocked is given back
 *    unstarted (a release: no attempt spent).
 */
export class Fetcher {
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(
    private readonly app: App,
    private readonly conn: Connection,
    private readonly executor: Executor,
    private readonly options: {
      queues: readonly string[];
      leaseMs: number;
      blockMs: number;
      onError: (err: Error) => void;
      paused?: () => ReadonlySet<string>;
      pausePollMs?: number;
      /** Where the outage lines go (the worker's logger); default the app's. */
      logger?: Logger;
    },
  ) {}

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops fetching; resolves when the loop has exited. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let failures = 0;
    let outageSince = 0;
    while (!signal.aborted) {
      await this.executor.waitForSlot(signal);
      if (signal.aborted) break;
      const queues = this.#unpaused();
      if (queues.length === 0) {
        await sleep(this.options.pausePollMs ?? 1_000, signal);
        continue;
      }
      // An outage ends when the first fetch that succeeds was sent: its answer may block for blockMs.
      const askedAt = Date.now();
      try {
        const deliveries = await this.#fetch(queues, signal);
        if (deliveries === null) break;
        const leasedAt = Date.now();
        if (failures > 0) this.#logger.info({ downMs: askedAt - outageSince, failedFetches: failures }, `broker reachable again after ${seconds(askedAt - outageSince)}`);
        failures = 0;
        if (signal.aborted) {
          // Given back unstarted, for at most a lease: a broker gone silent must not hold up the stop
          // (what was not given back returns when its lease lapses).
          await withTimeout(Promise.allSettled(deliveries.map((d) => d.release())), this.options.leaseMs, () => new Error('release timed out')).catch(() => {});
          break;
        }
        const paused = this.options.paused?.();
        for (const d of deliveries) {
          if (paused?.has(d.message.queue)) void d.release().catch(() => {}); // paused meanwhile: back unstarted (else its lease lapses)
          else this.executor.run(d, leasedAt);
        }
        // An empty answer that did not block (e.g. a closed broker) must not spin the event loop.
        if (deliveries.length === 0) await new Promise((resolve) => setImmediate(resolve));
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        const delay = Math.min(MAX_BACKOFF_MS, 100 * 2 ** (failures - 1));
        if (failures === 1) {
          outageSince = askedAt;
          this.#logger.warn({ err: String(err), retryInMs: delay }, `cannot fetch from the broker (${String(err)}); retrying in ${seconds(delay)}, backing off to ${seconds(MAX_BACKOFF_MS)} between tries (further failures at debug; a line follows when it answers)`);
        } else this.#logger.debug({ err: String(err), retryInMs: delay, failures }, 'fetch failed again; backing off');
        this.options.onError(err as Error);
        await sleep(delay, signal);
      }
    }
  }

  get #logger(): Logger {
    return this.options.logger ?? this.app.logger;
  }

  #unpaused(): readonly string[] {
    const paused = this.options.paused?.();
    return paused && paused.size > 0 ? this.options.queues.filter((q) => !paused.has(q)) : this.options.queues;
  }

  /**
   * One fetch, bounded: a broker that does not answer within `blockMs + leaseMs` (a silent
   * partition) counts as a broker error. Null when the fetcher stopped meanwhile; deliveries that
   * arrive after either are given back.
   */
  async #fetch(queues: readonly string[], signal: AbortSignal): Promise<Delivery[] | null> {
    const { leaseMs, blockMs } = this.options;
    const call = this.conn.broker.fetch({ queues, max: this.executor.free, leaseMs, waitMs: blockMs, signal });
    const bound = blockMs + leaseMs;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), bound);
      onAbort = () => resolve('late');
      signal.addEventListener('abort', onAbort, { once: true });
    });
    const answer = await Promise.race([call, late]).finally(() => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort!);
    });
    if (answer !== 'late') return answer;
    void call.then((ds) => Promise.allSettled(ds.map((d) => d.release())), () => {});
    if (signal.aborted) return null;
    throw new BackendError(`the broker did not answer a fetch within ${bound} ms (blockMs + leaseMs)`);
  }
}

/** `0.1 s`, `12 s`: a person reads seconds. */
function seconds(ms: number): string {
  return `${ms < 10_000 ? Math.round(ms / 100) / 10 : Math.round(ms / 1000)} s`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
