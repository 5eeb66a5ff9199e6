import { EMPTY_CONTROL_STATE, GLOBAL_SCOPE, MAX_REVOCATIONS, readControlState, withTimeout, type App, type Connection, type ControlState, type Coordination } from '@celeriac/core';


/**
 * The worker's view of the control state (paused queues, revocations), kept in memory so the
 * pipeline checks it without a round trip.
 * 1. Reads it once at start (bounded), then polls the control version every `pollMs` and reads
 *    it again when the version moved; `onChange` hears each new view.
 * 2. Every store call is bounded by `boundMs`: a store that stalls or fails keeps the last view,
 *    is logged once, and its recovery is logged.
 * 3. Inert where the store keeps no coordination state (RabbitMQ alone): nothing is ever paused or revoked.
 */
export class ControlWatcher {
  #state: ControlState = EMPTY_CONTROL_STATE;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #failing = false;
  readonly #coordination: Coordination | null;

  constructor(
    private readonly app: App,
    conn: Connection,
    private readonly options: { pollMs: number; boundMs: number; onChange: (state: ControlState, previous: ControlState) => void },
  ) {
    this.#coordination = conn.results.coordination;
  }

  get state(): ControlState {
    return this.#state;
  }

  /** Reads the state once (so the first fetch already honours it), then polls. */
  async start(): Promise<void> {
    if (!this.#coordination) return;
    await this.#poll(true);
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#poll(false).finally(() => this.#schedule()), this.options.pollMs);
    this.#timer.unref?.();
  }

  async #poll(force: boolean): Promise<void> {
    const coordination = this.#coordination!;
    try {
      if (!force && (await this.#bounded(coordination.version(GLOBAL_SCOPE))) === this.#state.version) return this.#recovered();
      const { truncated, ...state } = await this.#bounded(readControlState(coordination));
      if (truncated) this.app.logger.warn({ limit: MAX_REVOCATIONS }, 'more revocations are live than a worker reads; the oldest beyond the limit are not applied (they are listed newest first)');
      const previous = this.#state;
      this.#state = state;
      this.#recovered();
      if (!this.#stopped) this.options.onChange(state, previous);
    } catch (err) {
      if (!this.#failing) this.app.logger.warn({ err: String(err), retryInMs: this.options.pollMs }, 'could not read the control state (pauses, revocations); keeping the last one');
      this.#failing = true;
    }
  }

  #recovered(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.app.logger.info('control state readable again');
  }

  #bounded<T>(call: Promise<T>): Promise<T> {
    return withTimeout(call, this.options.boundMs, () => new Error(`the store did not answer within ${this.options.boundMs} ms`));
  }
}
