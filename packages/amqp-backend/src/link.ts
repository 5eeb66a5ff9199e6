import { BackendError, type Logger } from '@celeriac/core';
import { Acks } from './acks.js';
import { parseEndpoint, type Endpoint } from './endpoint.js';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';

/**
 * One connection's worth of channels. `gen` numbers sessions: a delivery tag means something only
 * on the channel that issued it, so tokens carry the generation and a stale ack is never sent on
 * a newer channel.
 */
export interface Session {
  readonly gen: number;
  readonly model: ChannelModel;
  /** Confirm channel: every publish resolves on the broker's ack. */
  readonly pub: ConfirmChannel;
  /** Consumer channel: work deliveries and their acks. */
  readonly sub: Channel;
  /** Every ack and nack on `sub` goes through here (coalescing relies on seeing them all). */
  readonly acks: Acks;
}

export interface LinkListener {
  /** A new session is up: re-subscribe, re-publish what was unconfirmed. */
  opened(session: Session): void;
  /** The session ended: its unacked deliveries are back with the broker, its confirms will never come. */
  lost(session: Session, cause: Error): void;
}

/**
 * Keeps one AMQP session alive.
 * 1. Connects with exponential backoff (reconnectMinMs … reconnectMaxMs), forever until closed.
 * 2. Treats the unexpected close of the connection or of either work channel as the end of the
 *    session: closes the rest, tells listeners, reconnects with a new generation.
 * 3. Runs admin operations (declares, passive checks, browsing) on throwaway channels, so a
 *    404 or PRECONDITION_FAILED never takes down the work channels; while the broker is down they
 *    wait at most `backoff.waitMs` for a session (a caller such as `enqueue` must settle).
 * 4. Connects with a parsed options object (see endpoint.ts), never amqplib's URL parsing.
 */
export class Link {
  readonly #listeners: LinkListener[] = [];
  #current: Session | undefined;
  #next: Promise<Session> | undefined;
  #gen = 0;
  #closed = false;
  #everConnected = false;
  #wake: (() => void) | undefined;
  readonly #endpoint: Endpoint;

  constructor(
    url: string | Endpoint,
    /** Reconnect backoff; `waitMs` bounds how long `withChannel` waits for a session (default 10 s). */
    private readonly backoff: { minMs: number; maxMs: number; waitMs?: number },
    private readonly logger: Logger,
    /** Shown in the management UI and `rabbitmqctl list_connections`. */
    readonly name = 'celeriac',
  ) {
    this.#endpoint = typeof url === 'string' ? parseEndpoint(url) : url;
  }

  listen(listener: LinkListener): void {
    this.#listeners.push(listener);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The live session, or undefined while reconnecting. */
  get current(): Session | undefined {
    return this.#current;
  }

  /** The URL without credentials or parameters. */
  get display(): string {
    return this.#endpoint.display;
  }

  /**
   * The live session, waiting for a reconnect if needed: forever (consumers keep reconnecting
   * with capped backoff), or at most `waitMs` when given (then a BackendError says RabbitMQ is
   * unreachable; the reconnect loop goes on regardless).
   */
  session(waitMs?: number): Promise<Session> {
    if (this.#closed) return Promise.reject(new BackendError('AMQP broker is closed'));
    if (this.#current) return Promise.resolve(this.#current);
    this.#next ??= this.#connectLoop().finally(() => (this.#next = undefined));
    if (waitMs === undefined) return this.#next;
    const next = this.#next;
    return new Promise<Session>((resolve, reject) => {
      const t = setTimeout(() => reject(new BackendError(`RabbitMQ at ${this.display} unreachable for ${waitMs} ms (still reconnecting)`)), waitMs);
      next.then(
        (s) => (clearTimeout(t), resolve(s)),
        (err: unknown) => (clearTimeout(t), reject(err as Error)),
      );
    });
  }

  /**
   * Runs `fn` on a fresh channel of the live session and closes it after. If the session dies
   * under it, `fn` runs again on the next one (so `fn` must be idempotent: declares, checks, reads).
   */
  async withChannel<T>(fn: (ch: Channel) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const { model } = await this.session(this.backoff.waitMs ?? 10_000);
      try {
        const ch = await model.createChannel();
        ch.on('error', () => {}); // a channel error rejects the pending operation; nothing else to do
        try {
          return await fn(ch);
        } finally {
          await ch.close().catch(() => {});
        }
      } catch (err) {
        if (isChannelError(err) || this.#closed || attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, this.backoff.minMs * attempt));
      }
    }
  }

  /** Ends the current session on purpose (tests use it to simulate a lost connection). */
  drop(cause = new Error('connection dropped')): void {
    const s = this.#current;
    if (s) this.#end(s, cause);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    const s = this.#current;
    this.#current = undefined;
    if (s) await s.model.close().catch(() => {});
  }

  async #connectLoop(): Promise<Session> {
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new BackendError('AMQP broker is closed');
      try {
        return await this.#open();
      } catch (err) {
        // The first connect fails fast (a wrong URL should surface at startup); later ones retry.
        if (attempt === 0 && (!this.#everConnected || isFatal(err))) throw new BackendError(`cannot connect to ${this.display}: ${(err as Error).message}`, { cause: err });
        const delay = Math.min(this.backoff.maxMs, this.backoff.minMs * 2 ** attempt);
        this.logger.warn({ err: String(err), retryInMs: delay }, 'AMQP connect failed; retrying');
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          this.#wake = () => (clearTimeout(t), resolve());
        });
      }
    }
  }

  async #open(): Promise<Session> {
    // noDelay: acks are small frames sent one by one as tasks finish; they should leave at once
    // rather than wait behind Nagle's algorithm for the previous segment's TCP ack.
    const model = await amqp.connect(this.#endpoint.connect, { ...this.#endpoint.socket, noDelay: true, clientProperties: { connection_name: this.name } });
    coalesceWrites(model);
    try {
      const [pub, sub] = await Promise.all([model.createConfirmChannel(), model.createChannel()]);
      const session: Session = { gen: ++this.#gen, model, pub, sub, acks: new Acks(sub) };
      const end = (what: string) => (err?: Error) => this.#end(session, err ?? new Error(`${what} closed`));
      model.on('error', () => {}); // 'close' follows with the cause
      model.on('close', end('connection'));
      model.on('blocked', (reason: string) => this.logger.warn({ reason }, 'RabbitMQ blocked publishing (resource alarm)'));
      for (const [ch, name] of [[pub, 'publish channel'], [sub, 'consume channel']] as const) {
        ch.on('error', (err: Error) => this.logger.warn({ err: err.message }, `AMQP ${name} error`));
        ch.on('close', end(name));
      }
      if (this.#closed) throw new BackendError('AMQP broker is closed');
      this.#current = session;
      this.#everConnected = true;
      for (const l of this.#listeners) l.opened(session);
      return session;
    } catch (err) {
      await model.close().catch(() => {});
      throw err;
    }
  }

  #end(session: Session, cause: Error): void {
    if (this.#current !== session) return;
    this.#current = undefined;
    session.model.close().catch(() => {});
    for (const l of this.#listeners) l.lost(session, cause);
    if (!this.#closed) {
      this.logger.warn({ err: cause.message, gen: session.gen }, 'AMQP session lost; reconnecting');
      this.session().catch(() => {});
    }
  }
}

/**
 * amqplib's multiplexer writes every frame to the socket on its own: one syscall per publish and
 * per ack, the largest single cost in a busy client's profile (a third of a producer's CPU). Corked
 * while the multiplexer flushes, everything it had queued leaves in one `writev`. Frames keep their
 * order and nothing waits longer than before (uncork happens in the same call). If amqplib's
 * internals ever change shape this does nothing, and writes go out one by one as before.
 */
export function coalesceWrites(model: ChannelModel): boolean {
  type Mux = { _readIncoming?: () => void };
  const conn = (model as unknown as { connection?: { muxer?: Mux; stream?: { cork?: () => void; uncork?: () => void } } }).connection;
  const mux = conn?.muxer;
  const stream = conn?.stream;
  const flush = mux?._readIncoming;
  if (!mux || !stream || typeof flush !== 'function' || typeof stream.cork !== 'function' || typeof stream.uncork !== 'function') return false;
  const { cork, uncork } = stream as { cork: () => void; uncork: () => void };
  mux._readIncoming = function (this: Mux) {
    cork.call(stream);
    try {
      flush.call(this);
    } finally {
      uncork.call(stream);
    }
  };
  return true;
}

/**
 * A refusal by the server for this operation (403 access refused, 404 not found, 405 locked,
 * 406 precondition failed): trying again on a new channel gives the same answer. Anything else
 * (socket closed, channel closed with the connection) is the session going away.
 */
export function isChannelError(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 3; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'number' && e.code >= 403 && e.code <= 406) return true;
  }
  return false;
}

// Wrong credentials or vhost will not fix themselves: fail the first connect instead of looping.
function isFatal(err: unknown): boolean {
  const msg = String((err as Error)?.message ?? err);
  return /ACCESS_REFUSED|NOT_ALLOWED|403|530/.test(msg);
}
