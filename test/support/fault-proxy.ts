import { connect, createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';

/** Which bytes a fault applies to: the client's requests, the server's replies, or both. */
export type Direction = 'requests' | 'replies' | 'both';
type Flow = 'pass' | 'hold' | 'drop';

const DEFAULT_PORTS: Record<string, number> = { 'redis:': 6379, 'rediss:': 6379, 'amqp:': 5672, 'amqps:': 5672 };

/**
 * A TCP proxy in front of a server (Redis, RabbitMQ), for network faults no client can tell from
 * the real thing. The one proxy of the tests and the chaos suite:
 *
 *   const proxy = await new FaultProxy(REDIS_URL).start();   // or a port on 127.0.0.1
 *   connect to `redis://127.0.0.1:${proxy.port}` …
 *   proxy.hold();  proxy.heal();                              // a silent partition, then healed
 *
 * 1. Forwards bytes both ways between each client and an upstream connection of its own.
 * 2. Silence without a close: `hold()` keeps bytes (delivered in order by `heal()`, as a healed
 *    network would), `drop()` swallows them for good (the request or reply is lost).
 * 3. Cuts: `cut()` closes connections, `reset()` sends a TCP RST, `dropNextRequest()` /
 *    `dropNextReply()` cut the next connection that speaks at that very moment (a command run but
 *    its reply lost, or never run), `refuse()` closes new connections at once (a host that is down).
 * 4. Counts what happened, so a test can check its fault landed: `connections`, `closed`,
 *    `cuts`, `resets`.
 * With `{ tls }` it terminates TLS in front of a plain server (a TLS endpoint with the given
 * certificates), the faults staying the same.
 */
export class FaultProxy {
  readonly #server: Server;
  readonly #host: string;
  readonly #targetPort: number;
  /** Open connections, oldest first: [client, upstream]. */
  readonly #pairs = new Set<[Socket, Socket]>();
  /** Bytes kept by `hold()`, both directions in arrival order, for `heal()` to deliver. */
  readonly #held: [Socket, Buffer][] = [];
  #requests: Flow = 'pass';
  #replies: Flow = 'pass';
  #armed: 'none' | 'request' | 'reply' = 'none';
  #refusing = false;
  port = 0;
  /** Connections ended so far, by either side or by a fault (a test checks that nothing was cut). */
  closed = 0;
  /** Connections cut by dropNextRequest / dropNextReply so far. */
  cuts = 0;
  /** Connections cut by reset() so far. */
  resets = 0;

  /** `target`: a port on 127.0.0.1, or a server URL to take the host and port from. */
  constructor(target: number | string, options: { tls?: TlsOptions } = {}) {
    const url = typeof target === 'string' ? new URL(target) : null;
    this.#host = url ? url.hostname : '127.0.0.1';
    this.#targetPort = url ? Number(url.port || DEFAULT_PORTS[url.protocol]) : (target as number);
    const accept = (client: Socket) => this.#accept(client);
    if (options.tls) {
      const tls = createTlsServer(options.tls, accept);
      tls.on('tlsClientError', () => {}); // a refused handshake is the client's to report, not the proxy's
      this.#server = tls;
    } else this.#server = createServer(accept);
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
    return this;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#pairs.size;
  }

  /** Keeps every byte going `direction` (nothing is closed, nobody sees an error) until `heal()`. */
  hold(direction: Direction = 'both'): void {
    this.#set(direction, 'hold');
  }

  /** Swallows every byte going `direction` (nothing is closed) until `heal()`: those bytes are lost. */
  drop(direction: Direction = 'both'): void {
    this.#set(direction, 'drop');
  }

  /** Forwards again, delivering held bytes in order, and accepts new connections again. */
  heal(): void {
    this.#requests = this.#replies = 'pass';
    this.#refusing = false;
    for (const [to, chunk] of this.#held.splice(0)) if (!to.destroyed) to.write(chunk);
  }

  /** New connections are closed as soon as they are accepted, until `heal()`. */
  refuse(): void {
    this.#refusing = true;
  }

  /** Closes open connections (every one, or the one opened last); bytes held for them are never delivered. */
  cut(which: 'all' | 'newest' = 'all'): void {
    const pairs = which === 'all' ? [...this.#pairs] : [...this.#pairs].slice(-1);
    for (const pair of pairs) for (const socket of pair) socket.destroy();
  }

  /** Cuts every open connection with a TCP RST on both sides (a reset by a middlebox); returns how many. */
  reset(): number {
    const pairs = [...this.#pairs];
    for (const pair of pairs) {
      this.#pairs.delete(pair);
      this.closed++;
      for (const socket of pair) socket.resetAndDestroy();
    }
    this.resets += pairs.length;
    return pairs.length;
  }

  /** The next request from any client is swallowed and its connection cut (once). */
  dropNextRequest(): void {
    this.#armed = 'request';
  }

  /** The next reply from the server is swallowed and its connection cut (once): the command ran, the client never hears. */
  dropNextReply(): void {
    this.#armed = 'reply';
  }

  /** Cancels a dropNextRequest / dropNextReply that has not fired yet. */
  disarm(): void {
    this.#armed = 'none';
  }

  async close(): Promise<void> {
    for (const pair of this.#pairs) for (const socket of pair) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #set(direction: Direction, flow: Flow): void {
    if (direction !== 'replies') this.#requests = flow;
    if (direction !== 'requests') this.#replies = flow;
  }

  #accept(client: Socket): void {
    if (this.#refusing) return void client.destroy();
    const upstream = connect({ host: this.#host, port: this.#targetPort });
    const pair: [Socket, Socket] = [client, upstream];
    this.#pairs.add(pair);
    const cut = () => {
      this.#armed = 'none';
      this.cuts++;
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => this.#forward(this.#requests, this.#armed === 'request', upstream, chunk, cut));
    upstream.on('data', (chunk: Buffer) => this.#forward(this.#replies, this.#armed === 'reply', client, chunk, cut));
    const close = () => {
      if (this.#pairs.delete(pair)) this.closed++;
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  }

  /** A silenced direction wins over an armed cut: a partition hides the moment the cut waits for. */
  #forward(flow: Flow, armed: boolean, to: Socket, chunk: Buffer, cut: () => void): void {
    if (flow === 'hold') this.#held.push([to, chunk]);
    else if (flow === 'drop') return;
    else if (armed) cut();
    else if (!to.destroyed) to.write(chunk);
  }
}
