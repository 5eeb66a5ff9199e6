import type { App, Connection } from '@celeriac/core';
import type { Executor } from './executor.js';

const MAX_BACKOFF_MS = 5_000;

/**
 * The fetch loop.
 * 1. Asks the broker for as many deliveries as there are free slots (prefetch ≤ concurrency),
 *    blocking on the broker when idle — never polling.
 * 2. Hands each delivery to the executor.
 * 3. On broker errors, backs off exponentially (100 ms … 5 s) and tries again.
 * 4. Stops when aborted; deliveries that arrive after the stop are given back unstarted.
 */
export class Fetcher {
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(
    private readonly app: App,
    private readonly conn: Connection,
    private readonly executor: Executor,
    private readonly options: { queues: readonly string[]; leaseMs: number; blockMs: number; onError: (err: Error) => void },
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
    while (!signal.aborted) {
      await this.executor.waitForSlot(signal);
      if (signal.aborted) break;
      try {
        const deliveries = await this.conn.broker.fetch({
          queues: this.options.queues,
          max: this.executor.free,
          leaseMs: this.options.leaseMs,
          waitMs: this.options.blockMs,
          signal,
        });
        failures = 0;
        if (signal.aborted) {
          await Promise.allSettled(deliveries.map((d) => d.release()));
          break;
        }
        for (const d of deliveries) this.executor.run(d);
        // An empty answer that did not block (e.g. a closed broker) must not spin the event loop.
        if (deliveries.length === 0) await new Promise((resolve) => setImmediate(resolve));
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        const delay = Math.min(MAX_BACKOFF_MS, 100 * 2 ** (failures - 1));
        this.app.logger.error({ err: String(err), retryInMs: delay }, 'fetch failed; backing off');
        this.options.onError(err as Error);
        await sleep(delay, signal);
      }
    }
  }
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
