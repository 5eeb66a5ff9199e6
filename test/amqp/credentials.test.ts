import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AmqpBroker } from '@celeriac/amqp-backend';
import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canControlRabbit } from '../../packages/amqp-backend/src/testing.js';
import { FaultProxy } from '../support/fault-proxy.js';

// Issue 8, defect 14: a correct UTF-8 password was refused (amqplib decodes URLs with `unescape`),
// amqps:// could not trust a private CA (`?ca=` ignored) nor present a client certificate.

const exec = promisify(execFile);
const CTL = '/usr/sbin/rabbitmqctl';
const KEY_TTL = { keyTtlMs: 60_000 };

/** A publish and a fetch through `broker`: the connection really works, not only the handshake. */
async function roundTrip(broker: AmqpBroker): Promise<void> {
  const q = uniqueQueue('cred');
  const m = makeMessage(q);
  try {
    await broker.publish([m], KEY_TTL);
    const [d] = await broker.fetch({ queues: [q], max: 1, leaseMs: 10_000, waitMs: 5_000 });
    expect(d?.message.id).toBe(m.id);
    await d!.ack();
  } finally {
    await broker.link.withChannel(async (ch) => void (await ch.deleteQueue(q))).catch(() => {});
  }
}

describe.skipIf(!canControlRabbit)('amqp: a UTF-8 password, percent-encoded in the URL', () => {
  // Users are server-wide: a unique one per run, deleted after.
  const user = `celeriac-utf8-${process.pid}-${Date.now()}`;
  const password = 'p@ss:w/rd%é';
  beforeAll(async () => {
    await exec(CTL, ['add_user', user, password]);
    await exec(CTL, ['set_permissions', '-p', '/', user, '.*', '.*', '.*']);
  }, 60_000);
  afterAll(async () => {
    await exec(CTL, ['delete_user', user]).catch(() => {});
  }, 60_000);

  it('connects with it and works', async () => {
    const url = `amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:5672`;
    const broker = await new AmqpBroker(url, { replies: false }).connect();
    try {
      await roundTrip(broker);
    } finally {
      await broker.close();
    }
  });

  it('a wrong password still fails at connect, with the URL shown without it', async () => {
    const url = `amqp://${encodeURIComponent(user)}:${encodeURIComponent('p@ss:w/rd%e')}@127.0.0.1:5672`;
    const err = await new AmqpBroker(url, { replies: false }).connect().then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/cannot connect to amqp:\/\/celeriac-utf8-[\d-]+:\*\*\*@127\.0\.0\.1:5672\/: .*ACCESS_REFUSED/);
    expect(err?.message).not.toContain('p@ss');
  });
});

/**
 * A TLS endpoint in front of the shared RabbitMQ: the proxy terminates TLS, requires a client
 * certificate signed by a throwaway CA and forwards each accepted connection to 127.0.0.1:5672.
 */
describe('amqp: amqps:// with a private CA and a client certificate', () => {
  let dir: string;
  let proxy: FaultProxy | undefined;
  let port: number;
  const f = (name: string) => join(dir, name);
  const url = (params: string) => `amqps://guest:guest@127.0.0.1:${port}/?${params}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'celeriac-amqps-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=celeriac test CA', '-keyout', f('ca.key'), '-out', f('ca.crt'));
    writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const [name, extra] of [['server', ['-extfile', f('server.ext')]], ['client', []]] as const) {
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=celeriac ${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
      ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', ...extra, '-out', f(`${name}.crt`));
    }
    // The same client key, encrypted: needs passphrase=.
    ssl('pkey', '-in', f('client.key'), '-aes256', '-passout', 'pass:s3cret é', '-out', f('client-enc.key'));
    const read = (name: string) => readFileSync(f(name));
    // Refused handshakes are part of the test: the proxy ignores them (the client reports them).
    const tls = { key: read('server.key'), cert: read('server.crt'), ca: read('ca.crt'), requestCert: true, rejectUnauthorized: true };
    proxy = await new FaultProxy(5672, { tls }).start();
    port = proxy.port;
  }, 60_000);
  afterAll(async () => {
    await proxy?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const attempt = (u: string) => new AmqpBroker(u, { replies: false }).connect();

  it('trusts the CA from ?ca= and presents the client certificate from ?cert=&key=', async () => {
    const broker = await attempt(url(`ca=${f('ca.crt')}&cert=${f('client.crt')}&key=${f('client.key')}`));
    try {
      await roundTrip(broker);
    } finally {
      await broker.close();
    }
  });

  it('unlocks an encrypted client key with ?passphrase= (percent-encoded UTF-8)', async () => {
    const broker = await attempt(url(`ca=${f('ca.crt')}&cert=${f('client.crt')}&key=${f('client-enc.key')}&passphrase=${encodeURIComponent('s3cret é')}`));
    await broker.close();
  });

  it('without ?ca= the private CA is not trusted; without a client certificate the server refuses', async () => {
    const noCa = await attempt(url(`cert=${f('client.crt')}&key=${f('client.key')}`)).then(() => null, (e: Error) => e);
    expect(noCa?.message).toMatch(/cannot connect to amqps:\/\/guest:\*\*\*@127\.0\.0\.1:\d+\/: .*(self.signed|unable to (get|verify))/i);
    const noCert = await attempt(url(`ca=${f('ca.crt')}`)).then(() => null, (e: Error) => e);
    expect(noCert?.message).toMatch(/cannot connect to amqps:\/\/guest:\*\*\*@127\.0\.0\.1:\d+\//);
  });
});
