import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

/**
 * A private RabbitMQ node for tests that restart or kill the broker, so the shared node on 5672 is
 * never touched. One node per machine (port 5673, or CELERIAC_PRIVATE_AMQP_PORT), shared by every
 * test file and the chaos suite:
 *
 *   import { privateNode } from '../../test/amqp/private-node.js';
 *   await privateNode.start();          // idempotent: reuses a node already listening on 5673
 *   const app = createApp({ broker: privateNode.url });
 *   await privateNode.kill();           // SIGKILL, as a crash would; start() brings it back
 *   await privateNode.stop();           // graceful stop (messages on disk survive both)
 *
 * It runs the installed `rabbitmq-server` as a second Erlang node (`celeriac-test-5673@localhost`) with its
 * own config, data and logs under $TMPDIR/celeriac-rabbit/5673 and the system's Erlang cookie (so the
 * usual tools can reach it: `rabbitmqctl -n celeriac-test-5673@localhost …`). Durable queues and persistent
 * messages survive stop/kill/start, as on a real server. Boot takes a few seconds (up to ~30 s on a
 * busy machine): give hooks that start it a generous timeout.
 */
export interface PrivateNode {
  /** `amqp://guest:guest@127.0.0.1:5673` */
  readonly url: string;
  readonly port: number;
  readonly nodeName: string;
  /** Starts the node unless it already accepts connections; resolves once it does. */
  start(): Promise<void>;
  /** Stops the node gracefully (SIGTERM) and waits until it is gone. No-op if it is not running. */
  stop(): Promise<void>;
  /** Kills the node with SIGKILL (no goodbye to clients, no flush) and waits until the port is closed. */
  kill(): Promise<void>;
  /** Runs `rabbitmqctl` against this node (e.g. `['list_queues']`) and returns its stdout. */
  ctl(args: string[]): Promise<string>;
}

const exec = promisify(execFile);
const BIN = '/usr/lib/rabbitmq/bin';
const PORT = Number(process.env.CELERIAC_PRIVATE_AMQP_PORT ?? 5673);
const NODE = `celeriac-test-${PORT}@localhost`;
const BASE = join(tmpdir(), 'celeriac-rabbit', String(PORT));
const SYSTEM_COOKIE = '/var/lib/rabbitmq/.erlang.cookie';

/** False where RabbitMQ is not installed (Debian's rabbitmq-server package): tests skip then. */
export const canRunPrivateNode: boolean = existsSync(`${BIN}/rabbitmq-server`) && existsSync('/proc');

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function reachable(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => (socket.destroy(), resolve(ok));
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`private RabbitMQ node: timed out after ${withinMs} ms waiting for ${what} (logs: ${join(BASE, 'log')})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The environment both the server and rabbitmqctl need: node name, ports, dirs, cookie. */
function environment(): NodeJS.ProcessEnv {
  const home = join(BASE, 'home');
  for (const dir of [home, join(BASE, 'mnesia'), join(BASE, 'log')]) mkdirSync(dir, { recursive: true });
  const cookie = join(home, '.erlang.cookie');
  if (!existsSync(cookie)) {
    // The system cookie when we may read it (root), so `rabbitmqctl` works as usual; else our own.
    if (existsSync(SYSTEM_COOKIE)) {
      try {
        copyFileSync(SYSTEM_COOKIE, cookie);
      } catch {
        writeFileSync(cookie, `CELERIACTEST${PORT}`);
      }
    } else writeFileSync(cookie, `CELERIACTEST${PORT}`);
    chmodSync(cookie, 0o400);
  }
  const conf = join(BASE, 'rabbitmq.conf');
  writeFileSync(conf, `listeners.tcp.local = 127.0.0.1:${PORT}\nloopback_users.guest = true\n`);
  const envFile = join(BASE, 'rabbitmq-env.conf');
  writeFileSync(envFile, '# intentionally empty: this node ignores /etc/rabbitmq/rabbitmq-env.conf\n');
  const plugins = join(BASE, 'enabled_plugins');
  writeFileSync(plugins, '[].\n');
  return {
    ...process.env,
    HOME: home,
    RABBITMQ_NODENAME: NODE,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(PORT),
    RABBITMQ_DIST_PORT: String(PORT + 20_000),
    RABBITMQ_CONFIG_FILE: conf,
    RABBITMQ_CONF_ENV_FILE: envFile,
    RABBITMQ_ENABLED_PLUGINS_FILE: plugins,
    RABBITMQ_MNESIA_BASE: join(BASE, 'mnesia'),
    RABBITMQ_LOG_BASE: join(BASE, 'log'),
    RABBITMQ_PID_FILE: join(BASE, 'rabbit.pid'),
    // A node that fails to boot (e.g. a second one with the same name) dumps here, not in the cwd.
    ERL_CRASH_DUMP: join(BASE, 'log', 'erl_crash.dump'),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
}

/**
 * The node's beam.smp, found by its `-home` argument (unique to this port) rather than by the pid
 * file, which a second, failed boot of the same node name removes on its way out.
 */
function pid(): number | null {
  const marker = `\0-home\0${join(BASE, 'home')}\0`;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes('beam.smp') && cmdline.includes(marker)) return Number(entry);
    } catch {} // the process ended while we looked
  }
  return null;
}

function alive(p: number): boolean {
  try {
    process.kill(p, 0);
    return true;
  } catch {
    return false;
  }
}

// Test files in several processes may call start() at once: one boot at a time, through a lock
// directory (mkdir is atomic); a lock older than two minutes is from a boot that died.
const LOCK = `${BASE}.lock`;
let booting: Promise<void> | undefined;

async function boot(): Promise<void> {
  mkdirSync(dirname(LOCK), { recursive: true });
  for (const deadline = Date.now() + 180_000; ; ) {
    if (await reachable(PORT)) return;
    try {
      mkdirSync(LOCK, { recursive: false });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`private RabbitMQ node: another boot held ${LOCK} for 3 minutes`);
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > 120_000) rmdirSync(LOCK);
      } catch {} // released meanwhile
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    if (await reachable(PORT)) return;
    const env = environment();
    const old = pid();
    // Still shutting down (stop() of another process): let it finish before booting again.
    if (old !== null) await waitFor(() => !alive(old), `pid ${old} to exit`, 60_000);
    await exec(`${BIN}/rabbitmq-server`, ['-detached'], { env, cwd: BASE });
    await waitFor(() => reachable(PORT), `port ${PORT}`, 90_000);
    // The port opens before the boot finishes; wait until the node says it is fully up.
    await exec(`${BIN}/rabbitmqctl`, ['-n', NODE, 'await_startup', '--timeout', '90'], { env });
  } finally {
    rmdirSync(LOCK);
  }
}

async function signal(sig: NodeJS.Signals): Promise<void> {
  const p = pid();
  if (p === null || !alive(p)) return;
  process.kill(p, sig);
  await waitFor(() => !alive(p), `pid ${p} to exit after ${sig}`, 60_000);
  await waitFor(async () => !(await reachable(PORT)), `port ${PORT} to close`, 10_000);
}

export const privateNode: PrivateNode = {
  url: `amqp://guest:guest@127.0.0.1:${PORT}`,
  port: PORT,
  nodeName: NODE,
  start: () => (booting ??= boot().finally(() => (booting = undefined))),
  stop: () => signal('SIGTERM'),
  kill: () => signal('SIGKILL'),
  async ctl(args) {
    const { stdout } = await exec(`${BIN}/rabbitmqctl`, ['-n', NODE, ...args], { env: environment() });
    return stdout;
  },
};
