import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of Redis that can cut a connection at the worst moment: after the server
 * has run a command but before its reply reaches the client (the ambiguous case a reconnect has
 * to survive), or before the command reaches the server at all.
 */
export class FlakyProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  #mode: 'pass' | 'drop-reply' | 'drop-request' = 'pass';
  /** A silent partition: connections stay open (and new ones are accepted) but no byte gets through. */
  #silent = false;
  /** Replies from the server are swallowed (requests still get through) until `heal()`. */
  #muted = false;
  /** New connections are closed at once (as by a host that is down) until `heal()`. */
  #refusing = false;
  port = 0;
  /** Connections closed so far, by either side (a test checks that nothing was cut). */
  closed = 0;
  /** Connections cut by dropNextReply / dropNextRequest so far (a test checks its cut happened). */
  cuts = 0;

  constructor(readonly targetPort = 6379) {
    this.#server = createServer((client) => {
      if (this.#refusing) {
        client.destroy();
        return;
      }
      const upstream = connect({ host: '127.0.0.1', port: this.targetPort });
      const pair: [Socket, Socket] = [client, upstream];
      this.#pairs.add(pair);
      const cut = () => {
        this.#mode = 'pass';
        this.cuts++;
        client.destroy();
        upstream.destroy();
      };
      client.on('data', (chunk) => (this.#silent ? undefined : this.#mode === 'drop-request' ? cut() : upstream.write(chunk)));
      upstream.on('data', (chunk) => (this.#silent || this.#muted ? undefined : this.#mode === 'drop-reply' ? cut() : client.write(chunk)));
      const close = () => {
        if (this.#pairs.delete(pair)) this.closed++;
        client.destroy();
        upstream.destroy();
      };
      client.on('close', close).on('error', close);
      upstream.on('close', close).on('error', close);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
    return this;
  }

  /** The next reply from the server is swallowed and the connection cut (once). */
  dropNextReply(): void {
    this.#mode = 'drop-reply';
  }

  /** The next request from the client is swallowed and the connection cut (once). */
  dropNextRequest(): void {
    this.#mode = 'drop-request';
  }

  /** Cancels a dropNextReply / dropNextRequest that has not fired yet. */
  disarm(): void {
    this.#mode = 'pass';
  }

  /** Swallows every byte both ways until `heal()`: no reset, no close, just silence. */
  partition(): void {
    this.#silent = true;
  }

  /** Swallows every byte from the server until `heal()`: commands run, their replies never arrive. */
  muteReplies(): void {
    this.#muted = true;
  }

  heal(): void {
    this.#silent = false;
    this.#muted = false;
    this.#refusing = false;
  }

  /** Cuts the connection opened last and refuses new ones until `heal()`; older ones carry on. */
  cutNewestAndRefuse(): void {
    this.#refusing = true;
    const newest = [...this.#pairs].at(-1);
    newest?.forEach((socket) => socket.destroy());
  }

  async close(): Promise<void> {
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
