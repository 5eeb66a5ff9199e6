import { BackendError } from '@celeriac/core';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Client } from './scripts.js';
import type { RedisTarget } from './url.js';

// Reconnect with exponential backoff from 100 ms to 3 s, with jitter so a fleet of workers does
// not reconnect in lockstep after a server restart.
const retryStrategy = (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 3_000) + Math.floor(Math.random() * 100);

/** Opens a client for `target`, checks the server can hold a queue safely, and returns it. */
export async function openClient(target: RedisTarget): Promise<Client> {
  const client = createClient(target);
  // Errors while (re)connecting surface on the commands that fail; the event itself is only noise,
  // except at start, where it says why (a TLS or auth failure shows up as "Connection is closed.").
  let cause: Error | undefined;
  client.on('error', (err: Error) => (cause ??= err));
  try {
    await client.connect();
    await checkServers(client, target);
    return client;
  } catch (err) {
    client.disconnect();
    if (err instanceof BackendError) throw err;
    const why = cause && cause.message !== (err as Error).message ? `${(err as Error).message} (${cause.message})` : (err as Error).message;
    throw new BackendError(`cannot connect to Redis at ${target.display}: ${why}`, { cause: cause ?? err });
  }
}

/**
 * Longest a connection may stay silent while a command written on it awaits its reply (ioredis'
 * `socketTimeout`: armed when a command is written, re-armed by every byte that arrives). Past it
 * the connection is destroyed and redialled, and ioredis resends the unanswered commands: safe,
 * since fetch and settle answer a resend from their memos (fetch-7.lua, settle-7.lua), publish
 * dedups by id, renew and the claims are idempotent for their owner. Without it a command written
 * to a silent peer (a partition that resets nothing) waits for good. The scripts are bounded
 * (≤ 1,000 leases, ≤ 500 settlements per call) and answer in milliseconds; a server stalled this
 * long by someone else's command costs a redial and a resend, nothing more. Connections that
 * block legitimately (BLPOP, fetcher.ts) and pub/sub (no reply awaited) do not use it.
 */
export const SILENT_PEER_MS = 3_000;

function createClient(target: RedisTarget): Client {
  // Auto-pipelining writes every command issued in one tick as one batch: concurrent publishes,
  // fetches of several queues and settlements share round trips without callers doing anything.
  const common = { lazyConnect: true, enableAutoPipelining: true } as const;
  if (!target.cluster) {
    return clearsSocketTimerOnClose(new Redis({ ...target.redis, ...common, host: target.host, port: target.port, retryStrategy, socketTimeout: SILENT_PEER_MS }));
  }
  return clearsSocketTimerOnClose(new Cluster([{ host: target.host, port: target.port }], {
    ...common,
    redisOptions: { ...target.redis, socketTimeout: SILENT_PEER_MS },
    clusterRetryStrategy: retryStrategy,
    // Results wake waiters with SPUBLISH on the queue's own slot; this routes SSUBSCRIBE there.
    shardedSubscribers: true,
  }));
}

/**
 * Works around ioredis (5.11) leaving a connection's socketTimeout timer running when that
 * connection closes: armed by a command whose reply the drop cut off, it fires up to
 * SILENT_PEER_MS later on whatever connection is current by then, and destroys the healthy
 * redialled one (measured: a reset, then a second, needless one 3 s later). Cleared on close, it
 * is armed afresh by the next command written on the new connection.
 */
function clearsSocketTimerOnClose<C extends Client>(client: C): C {
  const guard = (conn: Redis) =>
    conn.on('close', () => {
      const internals = conn as unknown as { socketTimeoutTimer?: NodeJS.Timeout | undefined };
      clearTimeout(internals.socketTimeoutTimer);
      internals.socketTimeoutTimer = undefined;
    });
  if (client instanceof Cluster) client.on('+node', guard);
  else guard(client as Redis);
  return client;
}

async function checkServers(client: Client, target: RedisTarget): Promise<void> {
  const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
  for (const node of nodes) {
    const info = parseInfo(await node.info());
    const version = info.get('redis_version') ?? '0';
    if (Number(version.split('.')[0]) < 7) {
      throw new BackendError(`Redis at ${target.display} is version ${version}; celeriac needs Redis 7 or later (sharded pub/sub, LPOP with a count)`);
    }
    const policy = info.get('maxmemory_policy') ?? 'noeviction';
    // Only noeviction is safe. allkeys-* would evict queued messages. volatile-* leaves the queue
    // itself alone (its keys have no TTL) but evicts results and idempotency records, which carry
    // one: a task could then run twice despite its key, or a waiting caller never see its result.
    if (policy !== 'noeviction') {
      throw new BackendError(
        `Redis at ${target.display} has maxmemory-policy "${policy}", which can evict ${policy.startsWith('volatile') ? 'results and idempotency records' : 'queued tasks'}; ` +
          'celeriac needs noeviction: run `CONFIG SET maxmemory-policy noeviction` (and set it in redis.conf)',
      );
    }
  }
}

/** INFO text → field map (INFO works where CONFIG is disabled, as on many managed services). */
function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields.set(line.slice(0, at), line.slice(at + 1));
  }
  return fields;
}

/** A second connection to the same server(s), for blocking reads or pub/sub, which tie a connection up. */
export function duplicate(client: Client, options: Partial<RedisOptions>): Client {
  const conn: Client =
    client instanceof Cluster
      ? client.duplicate([], { ...options, redisOptions: { ...client.options.redisOptions, ...options } })
      : client.duplicate(options);
  conn.on('error', () => {}); // it reconnects on its own; callers see failures on their commands
  return clearsSocketTimerOnClose(conn);
}

/** Longest a close waits for Redis to answer QUIT before it drops the connection. */
export const QUIT_WAIT_MS = 1_000;

/**
 * Closes a connection politely (QUIT: what was sent before it is answered first) within `waitMs`,
 * then drops it whatever happened: a silent connection never answers QUIT.
 */
export async function quitWithin(client: Client, waitMs = QUIT_WAIT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)));
  try {
    await Promise.race([client.quit().catch(() => {}), bound]);
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}
