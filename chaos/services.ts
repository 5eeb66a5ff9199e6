import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reachable, waitUntil } from '../test/redis/servers.js';
import { PrivateRabbit } from '../test/support/private-rabbit.js';

export { reachable, waitUntil };

/** The Redis that holds the side-effect ledger: private, never restarted by a scenario. */
export const LEDGER_PORT = Number(process.env.CHAOS_LEDGER_PORT ?? 6399);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The first port from `from` on which nothing listens (ports of the shared servers never come up here). */
export async function freePort(from: number, to: number): Promise<number> {
  const start = from + Math.floor(Math.random() * (to - from));
  for (let n = 0; n <= to - from; n++) {
    const port = from + ((start - from + n) % (to - from + 1));
    if (!(await reachable(port, 200))) return port;
  }
  throw new Error(`chaos: no free port in ${from}–${to}`);
}

/**
 * A redis-server the suite starts, SIGKILLs and restarts itself, with every write fsynced to its
 * append-only file (`appendfsync always`): a confirmed write survives a SIGKILL of the server.
 * 1. Starts on a free port from 6390, in a private directory, as a child process.
 * 2. Stops gracefully (SHUTDOWN) or crashes (SIGKILL); restarts on the same port and files.
 */
export class PrivateRedis {
  #child: ChildProcess | undefined;
  readonly dir: string;
  constructor(readonly port: number) {
    this.dir = join(tmpdir(), 'celeriac-chaos', `redis-${port}`);
  }

  static async start(persistent: boolean, from = 6390, to = 6398): Promise<PrivateRedis> {
    const server = new PrivateRedis(await freePort(from, to));
    rmSync(server.dir, { recursive: true, force: true });
    mkdirSync(server.dir, { recursive: true });
    await server.#spawn(persistent);
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async #spawn(persistent = true): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--maxmemory-policy', 'noeviction'];
    args.push(...(persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));
    this.#child = spawn('redis-server', args, { stdio: 'ignore' });
    await waitUntil(() => reachable(this.port), `private redis-server on ${this.port}`, 20_000);
  }

  /** SIGKILL (a crash) or SIGTERM (redis saves and exits); waits until the port is closed. */
  async stop(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await Promise.race([exited, sleep(15_000)]);
    this.#child = undefined;
  }

  async restart(signal: 'SIGKILL' | 'SIGTERM', downMs: number): Promise<void> {
    await this.stop(signal);
    await sleep(downMs);
    await this.#spawn(true);
  }

  /** Kills the server and deletes its files. */
  async remove(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Starts the ledger's redis-server once (idempotent: later runs reuse it; it holds only `chaos-*` keys). */
export async function ensureLedger(): Promise<string> {
  if (!(await reachable(LEDGER_PORT))) {
    const dir = join(tmpdir(), 'celeriac-chaos', 'ledger');
    mkdirSync(dir, { recursive: true });
    execFileSync('redis-server', [
      '--port', String(LEDGER_PORT), '--bind', '127.0.0.1', '--daemonize', 'yes', '--save', '', '--appendonly', 'no',
      '--dir', dir, '--logfile', join(dir, 'redis.log'), '--pidfile', join(dir, 'redis.pid'),
    ]);
    await waitUntil(() => reachable(LEDGER_PORT), `ledger redis-server on ${LEDGER_PORT}`);
  }
  return `redis://127.0.0.1:${LEDGER_PORT}`;
}

/**
 * A RabbitMQ node of the suite's own on a free port from 5690 (own node name, data directory and
 * port), started with no data, so it can be stopped and SIGKILLed without touching the shared
 * server on 5672. `restart(signal, downMs)` brings it back on the same data; `remove()` ends it.
 */
export async function startPrivateRabbit(from = 5690, to = 5698): Promise<PrivateRabbit> {
  const node = new PrivateRabbit(await freePort(from, to));
  await node.start({ fresh: true });
  return node;
}
