import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { reachable, waitUntil } from '../redis/servers.js';

const exec = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const BIN = '/usr/lib/rabbitmq/bin';
const SYSTEM_COOKIE = '/var/lib/rabbitmq/.erlang.cookie';

/** False where RabbitMQ is not installed (Debian's rabbitmq-server package): tests skip then. */
export const canRunPrivateNode: boolean = existsSync(`${BIN}/rabbitmq-server`) && existsSync('/proc');

/**
 * A RabbitMQ node of our own, for tests and chaos scenarios that stop or kill the broker: the
 * shared node on 5672 is never touched. The one private-node starter of the tests and the chaos suite.
 *
 *   await privateNode.start();          // the machine's test node on 5673: reused if already up
 *   const app = createApp({ broker: privateNode.url });
 *   await privateNode.kill();           // SIGKILL, as a crash would; start() brings it back
 *   await privateNode.stop();           // graceful stop (messages on disk survive both)
 *
 * 1. Runs the installed `rabbitmq-server` detached, as a second Erlang node
 *    (`celeriac-test-<port>@localhost`) with its own config, data and logs under
 *    $TMPDIR/celeriac-rabbit/<port>, no plugins, and the system's Erlang cookie when readable (so
 *    `rabbitmqctl -n celeriac-test-<port>@localhost …` works as usual).
 * 2. `start()` is idempotent and safe from several processes at once (one boot at a time, through
 *    a lock directory); it returns once the node says it is fully up.
 * 3. `stop()` (SIGTERM: a clean shutdown) and `kill()` (SIGKILL) wait until the node is gone and its
 *    port closed; durable queues and persistent messages survive both, as on a real server.
 * 4. `remove()` kills it and deletes its data: for a node started with `{ fresh: true }`.
 * Boot takes a few seconds (up to ~30 s on a busy machine): give hooks that start it a generous timeout.
 */
export class PrivateRabbit {
  readonly url: string;
  readonly nodeName: string;
  readonly dir: string;
  #booting: Promise<void> | undefined;

  constructor(readonly port: number) {
    this.url = `amqp://guest:guest@127.0.0.1:${port}`;
    this.nodeName = `celeriac-test-${port}@localhost`;
    this.dir = join(tmpdir(), 'celeriac-rabbit', String(port));
  }

  /** Starts the node unless it already accepts connections; `fresh`: with its data deleted first (only when it is down). */
  start(options: { fresh?: boolean } = {}): Promise<void> {
    return (this.#booting ??= this.#boot(options.fresh ?? false).finally(() => (this.#booting = undefined)));
  }

  /** Stops the node gracefully (SIGTERM) and waits until it is gone. No-op if it is not running. */
  stop(): Promise<void> {
    return this.#signal('SIGTERM');
  }

  /** Kills the node with SIGKILL (no goodbye to clients, no flush) and waits until the port is closed. */
  kill(): Promise<void> {
    return this.#signal('SIGKILL');
  }

  /** Stops it (SIGTERM) or crashes it (SIGKILL), leaves it down `downMs`, and starts it on the same data. */
  async restart(signal: 'SIGTERM' | 'SIGKILL', downMs: number): Promise<void> {
    await this.#signal(signal);
    await sleep(downMs);
    await this.start();
  }

  /** Kills the node and deletes its data directory. */
  async remove(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs `rabbitmqctl` against this node (e.g. `['list_queues']`) and returns its stdout. */
  async ctl(args: string[]): Promise<string> {
    const { stdout } = await exec(`${BIN}/rabbitmqctl`, ['-n', this.nodeName, ...args], { env: this.#environment() });
    return stdout;
  }

  #waitFor(check: () => Promise<boolean>, what: string, withinMs: number): Promise<void> {
    return waitUntil(check, `${what} (private RabbitMQ node; logs: ${join(this.dir, 'log')})`, withinMs);
  }

  /** The environment both the server and rabbitmqctl need: node name, ports, dirs, cookie. */
  #environment(): NodeJS.ProcessEnv {
    const base = this.dir;
    const home = join(base, 'home');
    for (const dir of [home, join(base, 'mnesia'), join(base, 'log')]) mkdirSync(dir, { recursive: true });
    const cookie = join(home, '.erlang.cookie');
    if (!existsSync(cookie)) {
      // The system cookie when we may read it (root), so `rabbitmqctl` works as usual; else our own.
      try {
        copyFileSync(SYSTEM_COOKIE, cookie);
      } catch {
        writeFileSync(cookie, `CELERIACTEST${this.port}`);
      }
      chmodSync(cookie, 0o400);
    }
    const conf = join(base, 'rabbitmq.conf');
    writeFileSync(conf, `listeners.tcp.local = 127.0.0.1:${this.port}\nloopback_users.guest = true\n`);
    const envFile = join(base, 'rabbitmq-env.conf');
    writeFileSync(envFile, '# intentionally empty: this node ignores /etc/rabbitmq/rabbitmq-env.conf\n');
    const plugins = join(base, 'enabled_plugins');
    writeFileSync(plugins, '[].\n');
    return {
      ...process.env,
      HOME: home,
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.port + 20_000),
      RABBITMQ_CONFIG_FILE: conf,
      RABBITMQ_CONF_ENV_FILE: envFile,
      RABBITMQ_ENABLED_PLUGINS_FILE: plugins,
      RABBITMQ_MNESIA_BASE: join(base, 'mnesia'),
      RABBITMQ_LOG_BASE: join(base, 'log'),
      RABBITMQ_PID_FILE: join(base, 'rabbit.pid'),
      // A node that fails to boot (e.g. a second one with the same name) dumps here, not in the cwd.
      ERL_CRASH_DUMP: join(base, 'log', 'erl_crash.dump'),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
  }

  /**
   * The node's beam.smp, found by its `-home` argument (unique to this port) rather than by the pid
   * file, which a second, failed boot of the same node name removes on its way out.
   */
  #pid(): number | null {
    const marker = `\0-home\0${join(this.dir, 'home')}\0`;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
        if (cmdline.includes('beam.smp') && cmdline.includes(marker)) return Number(entry);
      } catch {} // the process ended while we looked
    }
    return null;
  }

  // Test files in several processes may call start() at once: one boot at a time, through a lock
  // directory (mkdir is atomic); a lock older than two minutes is from a boot that died.
  async #boot(fresh: boolean): Promise<void> {
    const lock = `${this.dir}.lock`;
    mkdirSync(dirname(lock), { recursive: true });
    for (const deadline = Date.now() + 180_000; ; ) {
      if (await reachable(this.port)) return;
      try {
        mkdirSync(lock, { recursive: false });
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`private RabbitMQ node: another boot held ${lock} for 3 minutes`);
        try {
          if (Date.now() - statSync(lock).mtimeMs > 120_000) rmdirSync(lock);
        } catch {} // released meanwhile
        await sleep(250);
      }
    }
    try {
      if (await reachable(this.port)) return;
      const old = this.#pid();
      // Still shutting down (stop() of another process): let it finish before booting again.
      if (old !== null) await this.#waitFor(async () => !alive(old), `pid ${old} to exit`, 60_000);
      if (fresh) rmSync(this.dir, { recursive: true, force: true });
      const env = this.#environment();
      await exec(`${BIN}/rabbitmq-server`, ['-detached'], { env, cwd: this.dir });
      await this.#waitFor(() => reachable(this.port), `port ${this.port}`, 90_000);
      // The port opens before the boot finishes; wait until the node says it is fully up.
      await exec(`${BIN}/rabbitmqctl`, ['-n', this.nodeName, 'await_startup', '--timeout', '90'], { env });
    } finally {
      rmdirSync(lock);
    }
  }

  async #signal(sig: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const p = this.#pid();
    if (p === null || !alive(p)) return;
    process.kill(p, sig);
    await this.#waitFor(async () => !alive(p), `pid ${p} to exit after ${sig}`, 60_000);
    await this.#waitFor(async () => !(await reachable(this.port)), `port ${this.port} to close`, 10_000);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The machine's test node: port 5673 (or CELERIAC_PRIVATE_AMQP_PORT), shared by every test file. */
export const privateNode = new PrivateRabbit(Number(process.env.CELERIAC_PRIVATE_AMQP_PORT ?? 5673));
