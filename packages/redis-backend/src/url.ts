import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { ValidationError, redactUrl } from '@celeriac/core';
import type { RedisOptions } from 'ioredis';

/** Where and how to connect, parsed once from a `redis://` or `rediss://` URL. */
export interface RedisTarget {
  /** The URL with its password hidden, for messages. */
  display: string;
  host: string;
  port: number;
  /** Seed node of a Redis Cluster (`?cluster=1`); the other nodes are discovered from it. */
  cluster: boolean;
  /** Options for each connection: user, password, db, TLS. */
  redis: RedisOptions;
  /** First part of every key (`?prefix=`, default `celeriac`); lets apps or tests share a server. */
  prefix: string;
  /** How long the id of a task acked without a result stays known to publish's dedup (`?tombstoneMs=`, default 24 h). */
  tombstoneMs: number;
}

const DAY_MS = 86_400_000;

/**
 * `redis://[user[:password]@]host[:port][/db][?prefix=…&cluster=1&tombstoneMs=…]`, or `rediss://`
 * for TLS (`&ca=/path/ca.pem` to trust a private CA; the server's certificate is always verified;
 * `&cert=/path/client.crt&key=/path/client.key` to present a client certificate).
 * User and password are URL-decoded, so ACL users and passwords with `@` or `:` work when
 * percent-encoded.
 */
export function parseRedisUrl(url: string): RedisTarget {
  const display = redactUrl(url);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ValidationError('INVALID_OPTIONS', `redis: ${JSON.stringify(display)} is not a URL; use redis://host:6379 or rediss://user:password@host:6380/0`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new ValidationError('INVALID_OPTIONS', `redis: unsupported scheme ${u.protocol}// in ${display}; use redis:// or rediss://`);
  }
  const host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) {
    throw new ValidationError('INVALID_OPTIONS', `redis: database must be a number ≥ 0 in the URL path, e.g. redis://host:6379/2 (got "${dbText}")`);
  }
  const cluster = ['1', 'true', 'yes'].includes(u.searchParams.get('cluster') ?? '');
  if (cluster && db !== 0) throw new ValidationError('INVALID_OPTIONS', `redis: a Redis Cluster has only database 0 (got /${db} in ${display})`);
  const prefix = u.searchParams.get('prefix') ?? 'celeriac';
  if (!/^[A-Za-z0-9_.:-]{1,100}$/.test(prefix)) {
    // Braces would move the hash tag off the queue name and split a queue across slots.
    throw new ValidationError('INVALID_OPTIONS', `redis: prefix must use 1–100 characters from A–Z a–z 0–9 _ . : - (got ${JSON.stringify(prefix)})`);
  }
  const tombstoneText = u.searchParams.get('tombstoneMs');
  const tombstoneMs = tombstoneText === null ? DAY_MS : Number(tombstoneText);
  if (!Number.isInteger(tombstoneMs) || tombstoneMs < 1) {
    throw new ValidationError('INVALID_OPTIONS', `redis: tombstoneMs must be an integer ≥ 1 (got ${JSON.stringify(tombstoneText)})`);
  }
  const redis: RedisOptions = { db };
  if (u.username) redis.username = decodeURIComponent(u.username);
  if (u.password) redis.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') {
    // SNI takes host names only; an IP address is checked against the certificate's IP entries.
    redis.tls = isIP(host) ? {} : { servername: host };
    const ca = u.searchParams.get('ca');
    if (ca !== null) redis.tls.ca = readPem(ca, 'ca', 'the CA file');
    // A client certificate, for servers that require one (`tls-auth-clients yes`).
    const cert = u.searchParams.get('cert');
    const key = u.searchParams.get('key');
    if ((cert === null) !== (key === null)) {
      throw new ValidationError('INVALID_OPTIONS', `redis: a client certificate needs both ?cert=/path/client.crt and ?key=/path/client.key (got only ?${cert === null ? 'key' : 'cert'}=)`);
    }
    if (cert !== null && key !== null) {
      redis.tls.cert = readPem(cert, 'cert', 'the client certificate file');
      redis.tls.key = readPem(key, 'key', 'the client key file');
    }
  } else {
    for (const name of ['ca', 'cert', 'key']) {
      if (u.searchParams.has(name)) throw new ValidationError('INVALID_OPTIONS', `redis: ?${name}= applies to TLS only; use rediss:// (got ${display})`);
    }
  }
  return { display, host, port, cluster, redis, prefix, tombstoneMs };
}

function readPem(path: string, param: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ValidationError('INVALID_OPTIONS', `redis: cannot read ${what} given by ?${param}= (${(err as Error).message})`);
  }
}
