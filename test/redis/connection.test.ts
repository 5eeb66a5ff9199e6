import { BackendError, ValidationError } from '@celeriac/core';
import { makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import { connectRedisBroker, connectResults, parseRedisUrl, type RedisBroker } from '@celeriac/redis-backend';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removePrefix, uniquePrefix } from './helpers.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { ensureRedisServer } from './servers.js';
import { ensureMutualTlsRedis, ensureTlsRedis } from './tls.js';

const KEY_TTL = { keyTtlMs: 60_000 };

describe('redis: reconnects', () => {
  let proxy: FaultProxy;
  let broker: RedisBroker;
  const prefix = uniquePrefix('conn');
  beforeAll(async () => {
    proxy = await new FaultProxy(6379).start();
    broker = await connectRedisBroker(`redis://127.0.0.1:${proxy.port}?prefix=${prefix}`);
  });
  afterAll(async () => {
    await broker?.close();
    await proxy?.close();
    await removePrefix(prefix);
  });
  /** Opens the lazily made producer connection too (publishes have one of their own). */
  const warmUp = () => broker.publish([makeMessage(uniqueQueue('warm'))], KEY_TTL);

  it('creates exactly one task when the publish reply is lost and the client resends after reconnecting', async () => {
    const q = uniqueQueue();
    await warmUp(); // every connection open, scripts loaded
    const msg = makeMessage(q);
    proxy.dropNextReply(); // the server runs the publish; the client never hears back
    const [published] = await broker.publish([msg], KEY_TTL);
    // The resend found the task its first try created: same id, nothing new.
    expect(published).toEqual({ id: msg.id, duplicate: true });
    expect(await broker.stats(q)).toMatchObject({ ready: 1 });
    const got = await broker.fetch({ queues: [q], max: 10, leaseMs: 30_000, waitMs: 500 });
    expect(got.map((d) => d.message.id)).toEqual([msg.id]);
    await got[0]!.ack();
  });

  it('creates the task when the publish never reached the server, after reconnecting', async () => {
    const q = uniqueQueue();
    await warmUp();
    const msgs = [makeMessage(q), makeMessage(q)];
    proxy.dropNextRequest();
    expect(await broker.publish(msgs, KEY_TTL)).toEqual(msgs.map((m) => ({ id: m.id, duplicate: false })));
    expect(await broker.stats(q)).toMatchObject({ ready: 2 });
  });

  it('keeps a blocked fetch and a result waiter working across a dropped connection', async () => {
    const q = uniqueQueue();
    const msg = makeMessage(q);
    const waiting = broker.results.wait(msg, { timeoutMs: 10_000 });
    const fetching = broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 5_000 });
    await sleep(100);
    proxy.dropNextRequest(); // cuts whichever connection speaks next: the publish's
    await broker.publish([msg], KEY_TTL);
    const [d] = await fetching;
    expect(d?.message.id).toBe(msg.id);
    const record = { id: msg.id, queue: q, task: msg.task, state: 'succeeded' as const, value: 1, attempts: 1, finishedAt: Date.now(), idempotencyKey: null };
    await d!.ack({ record, ttlMs: 60_000, keyTtlMs: 60_000 });
    expect(await waiting).toMatchObject({ state: 'succeeded', value: 1 });
  });

  it('finishes pending settlements on close', async () => {
    const prefix2 = uniquePrefix('close');
    const b = await connectRedisBroker(`redis://127.0.0.1:6379?prefix=${prefix2}`);
    const q = uniqueQueue();
    await b.publish(Array.from({ length: 20 }, () => makeMessage(q)), KEY_TTL);
    const got = await b.fetch({ queues: [q], max: 20, leaseMs: 30_000, waitMs: 500 });
    const acks = got.map((d) => d.ack()); // queued for the next tick…
    await b.close(); // …and flushed by close before the connection goes
    await Promise.all(acks);
    const check = await connectRedisBroker(`redis://127.0.0.1:6379?prefix=${prefix2}`);
    expect(await check.stats(q)).toMatchObject({ ready: 0, inFlight: 0, completed: 20 });
    await check.close();
    await removePrefix(prefix2);
  });
});

describe('redis: URLs and server checks', () => {
  it('parses user, password, database, TLS, prefix and cluster from the URL', () => {
    const t = parseRedisUrl('rediss://alice:p%40ss%3Aword@cache.example.com:6380/3?prefix=app1');
    expect(t).toMatchObject({ host: 'cache.example.com', port: 6380, cluster: false, prefix: 'app1' });
    expect(t.redis).toMatchObject({ username: 'alice', password: 'p@ss:word', db: 3, tls: { servername: 'cache.example.com' } });
    expect(t.display).not.toContain('p%40ss');
    expect(parseRedisUrl('redis://:secret@localhost').redis).toEqual({ db: 0, password: 'secret' });
    expect(parseRedisUrl('redis://h:7001?cluster=1')).toMatchObject({ cluster: true, prefix: 'celeriac' });
    expect(() => parseRedisUrl('redis://h/x')).toThrow(ValidationError);
    expect(() => parseRedisUrl('redis://h?prefix=a{b}')).toThrow(/prefix/);
    expect(() => parseRedisUrl('redis://h:7001/2?cluster=1')).toThrow(/database 0/);
  });

  it('connects as an ACL user with a password to a numbered database', async () => {
    await ensureRedisServer(7011, ['--user', 'default', 'off', '--user', 'alice', 'on', '>s3cret:pw', '~*', '&*', '+@all']);
    await expect(connectRedisBroker('redis://127.0.0.1:7011')).rejects.toBeInstanceOf(BackendError);
    await expect(connectRedisBroker('redis://alice:wrong@127.0.0.1:7011')).rejects.toThrow(/cannot connect to Redis at redis:\/\/alice:\*\*\*@/);
    const broker = await connectRedisBroker('redis://alice:s3cret%3Apw@127.0.0.1:7011/2?prefix=acl');
    const q = uniqueQueue();
    const msg = makeMessage(q);
    await broker.publish([msg], KEY_TTL);
    const [d] = await broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 500 });
    expect(d?.message.id).toBe(msg.id);
    await d!.ack();
    await broker.close();
    const results = await connectResults('redis://alice:s3cret%3Apw@127.0.0.1:7011/2?prefix=acl');
    expect(await results.get(msg)).toBeNull();
    await results.close();
  });

  it('refuses a server whose maxmemory-policy can evict queue keys, saying how to fix it', async () => {
    await ensureRedisServer(7012, ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru']);
    await expect(connectRedisBroker('redis://127.0.0.1:7012')).rejects.toThrow(/maxmemory-policy "allkeys-lru".*CONFIG SET maxmemory-policy noeviction/);
    await ensureRedisServer(7013, ['--maxmemory', '64mb', '--maxmemory-policy', 'volatile-lru']);
    await expect(connectResults('redis://127.0.0.1:7013')).rejects.toThrow(/volatile-lru.*idempotency records/);
  });

  it('speaks TLS with rediss://, verifying the server against the CA given by ?ca=', async () => {
    const { url, ca } = await ensureTlsRedis();
    await expect(connectRedisBroker(url)).rejects.toThrow(/cannot connect to Redis at rediss:.*(self-signed|certificate)/);
    const broker = await connectRedisBroker(`${url}?ca=${encodeURIComponent(ca)}&prefix=${uniquePrefix('tls')}`);
    const q = uniqueQueue();
    const msg = makeMessage(q);
    await broker.publish([msg], KEY_TTL);
    const waiting = broker.results.wait(msg, { timeoutMs: 5_000 });
    const [d] = await broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 1_000 });
    const record = { id: msg.id, queue: q, task: msg.task, state: 'succeeded' as const, value: 'over tls', attempts: 1, finishedAt: Date.now(), idempotencyKey: null };
    await d!.ack({ record, ttlMs: 60_000, keyTtlMs: 60_000 });
    expect(await waiting).toMatchObject({ value: 'over tls' }); // pub/sub over its own TLS connection too
    await broker.close();
    expect(() => parseRedisUrl('redis://h?ca=/x.pem')).toThrow(/TLS only/);
  });

  it('presents a client certificate given by ?cert= and ?key= to a server that requires one', async () => {
    const { url, ca, cert, key } = await ensureMutualTlsRedis();
    const enc = encodeURIComponent;
    await expect(connectRedisBroker(`${url}?ca=${enc(ca)}`)).rejects.toThrow(/cannot connect to Redis at rediss:\/\/127\.0\.0\.1:7016/);
    const prefix = uniquePrefix('mtls');
    const withCert = `${url}?ca=${enc(ca)}&cert=${enc(cert)}&key=${enc(key)}&prefix=${prefix}`;
    const broker = await connectRedisBroker(withCert);
    const q = uniqueQueue();
    const msg = makeMessage(q);
    await broker.publish([msg], KEY_TTL); // over the producer connection, which presents it too
    const waiting = broker.results.wait(msg, { timeoutMs: 5_000 });
    const [d] = await broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 1_000 });
    const record = { id: msg.id, queue: q, task: msg.task, state: 'succeeded' as const, value: 'mutual tls', attempts: 1, finishedAt: Date.now(), idempotencyKey: null };
    await d!.ack({ record, ttlMs: 60_000, keyTtlMs: 60_000 });
    expect(await waiting).toMatchObject({ value: 'mutual tls' });
    await broker.close();
    const results = await connectResults(withCert);
    expect(await results.get(msg)).toMatchObject({ value: 'mutual tls' });
    await results.close();
    expect(() => parseRedisUrl(`${url}?cert=${enc(cert)}`)).toThrow(/needs both \?cert=\/path\/client.crt and \?key=\/path\/client.key \(got only \?cert=\)/);
    expect(() => parseRedisUrl(`${url}?cert=/nonexistent.crt&key=/nonexistent.key`)).toThrow(/cannot read the client certificate file given by \?cert=/);
    expect(() => parseRedisUrl('redis://h?key=/x.key')).toThrow(/\?key= applies to TLS only/);
  });

  it('names the server when it cannot connect', async () => {
    await expect(connectRedisBroker('redis://127.0.0.1:1')).rejects.toThrow(/cannot connect to Redis at redis:\/\/127\.0\.0\.1:1/);
  });
});
