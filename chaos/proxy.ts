import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a broker, for network faults no process can tell from the real thing.
 * 1. Forwards bytes both ways between each client and its own upstream connection.
 * 2. `pause()`: a silent partition — nothing is forwarded and nothing is closed; the peers see
 *    silence until `resume()`, when the held bytes flow again (as after a healed network).
 * 3. `reset()`: every open connection is cut with a TCP RST on both sides (a reset by a middlebox).
 * (test/redis/proxy.ts cuts one reply or request at a chosen moment; this one cuts or freezes
 * whole connections at random moments, for processes it cannot see into.)
 */
export class ChaosProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  #paused = false;
  readonly #held: [Socket, Buffer][] = [];
  port = 0;
  resets = 0;

  constructor(readonly targetPort: number) {
    this.#server = createServer((client) => {
      const upstream = connect({ host: '127.0.0.1', port: this.targetPort });
      const pair: [Socket, Socket] = [client, upstream];
      this.#pairs.add(pair);
      // Held bytes are kept in order per direction and flushed on resume (a healed network delivers them).
      client.on('data', (chunk: Buffer) => this.#forward(upstream, chunk));
      upstream.on('data', (chunk: Buffer) => this.#forward(client, chunk));
      const close = () => {
        this.#pairs.delete(pair);
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

  get connections(): number {
    return this.#pairs.size;
  }

  #forward(to: Socket, chunk: Buffer): void {
    if (this.#paused) this.#held.push([to, chunk]);
    else if (!to.destroyed) to.write(chunk);
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    for (const [to, chunk] of this.#held.splice(0)) if (!to.destroyed) to.write(chunk);
  }

  /** Cuts every open connection with RST. */
  reset(): number {
    const n = this.#pairs.size;
    for (const pair of [...this.#pairs]) {
      this.#pairs.delete(pair);
      for (const s of pair) s.resetAndDestroy();
    }
    this.resets += n;
    return n;
  }

  async close(): Promise<void> {
    for (const [a, b] of this.#pairs) (a.destroy(), b.destroy());
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
