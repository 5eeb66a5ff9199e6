import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { AmqpBroker, type AmqpBrokerOptions } from './broker.js';
import type { AmqpOptions } from './options.js';

/** The RabbitMQ the tests use; override with CELERIAC_AMQP_URL. */
export const AMQP_URL = process.env.CELERIAC_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/**
 * A broker for tests, plus a raw amqplib connection to look at queues from outside, put raw
 * bytes on a queue, and delete what the test created (queues named after the test's prefix).
 */
export async function amqpFixture(options: AmqpBrokerOptions = {}) {
  const broker = await new AmqpBroker(AMQP_URL, { reconnectMinMs: 20, ...options }).connect();
  const raw = await amqp.connect(AMQP_URL);
  const created = new Set<string>();
  const channel = async <T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> => {
    const ch = await raw.createChannel();
    ch.on('error', () => {});
    try {
      return await fn(ch);
    } finally {
      await ch.close().catch(() => {});
    }
  };
  return {
    broker,
    raw,
    channel,
    /** Publishes raw bytes to a celeriac work queue (declared as celeriac would). */
    async injectRaw(queue: string, body: string): Promise<void> {
      created.add(queue);
      await broker.stats(queue).catch(() => {});
      await channel(async (ch) => {
        await ch.assertQueue(queue, { durable: true, arguments: { 'x-max-priority': 9 } });
        ch.sendToQueue(queue, Buffer.from(body), { persistent: true });
      });
    },
    track(queue: string): string {
      created.add(queue);
      return queue;
    },
    async close(): Promise<void> {
      const names = new Set([...broker.declaredQueues, ...created]);
      await broker.close();
      await channel(async (ch) => {
        for (const name of names) for (const n of [name, `${name}:dead`]) await ch.deleteQueue(n).catch(() => {});
      });
      await raw.close().catch(() => {});
    },
  };
}

const exec = promisify(execFile);

// rabbitmqctl drives the server from outside (kill a connection, lower consumer_timeout). It lives in
// /usr/sbin on Debian, which is not always on PATH; tests that need it skip when it is not there
// (e.g. CELERIAC_AMQP_URL points at a remote server).
const CTL = ['/usr/sbin/rabbitmqctl', '/usr/lib/rabbitmq/bin/rabbitmqctl', '/usr/local/sbin/rabbitmqctl'].find((p) => existsSync(p)) ?? 'rabbitmqctl';
const run = (args: string[]) => exec(CTL, args);

/** True when rabbitmqctl is installed and the tests' RabbitMQ is the local one it controls. */
export const canControlRabbit: boolean =
  (CTL !== 'rabbitmqctl' || process.env.PATH?.split(':').some((dir) => existsSync(`${dir}/rabbitmqctl`)) === true) &&
  (!process.env.CELERIAC_AMQP_URL || /@(127\.0\.0\.1|localhost)[:/]/.test(process.env.CELERIAC_AMQP_URL));

/** Has RabbitMQ itself close the connections named `name` (as a crash or a network cut would end them). */
export async function killConnection(name: string): Promise<number> {
  // Plain output: the pid as close_connection wants it (<rabbit@host.…>), then the properties.
  const { stdout } = await run(['list_connections', 'pid', 'client_properties', '-q']);
  const pids = stdout
    .split('\n')
    .filter((line) => line.includes(`"${name}"`))
    .map((line) => line.split('\t')[0]!);
  for (const pid of pids) await run(['close_connection', pid, 'celeriac test: connection killed']);
  return pids.length;
}

/** Reads or sets a RabbitMQ application setting at runtime (e.g. consumer_timeout) through rabbitmqctl. */
export async function rabbitEnv(key: string, value?: number): Promise<number> {
  if (value !== undefined) await run(['eval', `application:set_env(rabbit, ${key}, ${value}).`]);
  const { stdout } = await run(['eval', `application:get_env(rabbit, ${key}).`]);
  return Number(/\{ok,(\d+)\}/.exec(stdout)?.[1] ?? NaN);
}
