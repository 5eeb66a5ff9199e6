import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEndpoint } from './endpoint.js';
import { parseAmqpUrl } from './options.js';

// Server-free: how a broker URL becomes amqplib's connection object (issue 8, defect 14).
describe('amqp: parseEndpoint', () => {
  it('decodes a percent-encoded UTF-8 password as UTF-8 (amqplib used unescape: Latin-1)', () => {
    const password = 'p@ss:w/rd%é';
    const e = parseEndpoint(`amqp://b%C3%A9a:${encodeURIComponent(password)}@mq.example:5679/prod%2Feu?heartbeat=7`);
    expect(e.connect).toMatchObject({ protocol: 'amqp', hostname: 'mq.example', port: 5679, username: 'béa', password, heartbeat: 7 });
    expect(e.connect.vhost).toBe('prod%2Feu'); // amqplib unescapes the vhost itself (to "prod/eu")
    expect(e.display).toBe('amqp://b%C3%A9a:***@mq.example:5679/prod%2Feu'); // no password in messages
  });

  it('defaults like amqplib: guest/guest, vhost /, ports 5672 and 5671, a connect timeout', () => {
    expect(parseEndpoint('amqp://localhost').connect).toMatchObject({ username: 'guest', password: 'guest', vhost: '/', port: 5672 });
    expect(parseEndpoint('amqps://[::1]').connect).toMatchObject({ hostname: '::1', port: 5671 });
    expect(parseEndpoint('amqp://h').socket).toEqual({ timeout: 10_000 });
    expect(parseEndpoint('amqp://h?connectTimeoutMs=2500').socket).toEqual({ timeout: 2_500 });
  });

  it('reads TLS material from the files named by ca, cert, key, with passphrase', () => {
    const dir = mkdtempSync(join(tmpdir(), 'celeriac-endpoint-'));
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, f), `-----${f}-----`);
    const e = parseEndpoint(`amqps://h?ca=${dir}/ca.pem&cert=${dir}/cert.pem&key=${dir}/key.pem&passphrase=s3cret&servername=mq.internal`);
    const ca = e.socket.ca as (string | Buffer)[];
    expect(String(ca.at(-1))).toBe('-----ca.pem-----'); // added to Node's roots, not replacing them
    expect(ca.length).toBeGreaterThan(1);
    expect(String(e.socket.cert)).toBe('-----cert.pem-----');
    expect(String(e.socket.key)).toBe('-----key.pem-----');
    expect(e.socket).toMatchObject({ passphrase: 's3cret', servername: 'mq.internal' });
  });

  it('refuses what it cannot honour, naming the parameter and the fix', () => {
    expect(() => parseEndpoint('amqp://h?hearbeat=5')).toThrow(/unknown broker URL parameter "hearbeat"; known: .*heartbeat/);
    expect(() => parseEndpoint('amqp://h?ca=/x.pem')).toThrow(/ca only apply to TLS connections: use an amqps:\/\/ URL/);
    expect(() => parseEndpoint('amqps://h?ca=/nonexistent/ca.pem')).toThrow(/ca=\/nonexistent\/ca.pem: cannot read the file \(ENOENT\)/);
    expect(() => parseEndpoint('amqps://h?cert=/a.pem')).toThrow(/needs both cert= and key= \(got only cert\)/);
    expect(() => parseEndpoint('amqp://h?heartbeat=soon')).toThrow(/heartbeat must be a whole number of seconds ≥ 0 \(got "soon"\)/);
    expect(() => parseEndpoint('amqp://u:50%@h')).toThrow(/password in the broker URL is not valid percent-encoding: encode it with encodeURIComponent/);
  });

  it('parseAmqpUrl checks the connection part at once and keeps the heartbeat default (15 s) unless the URL has one', () => {
    expect(new URL(parseAmqpUrl('amqp://h').url).searchParams.get('heartbeat')).toBe('15');
    expect(new URL(parseAmqpUrl('amqp://h?heartbeat=4', { heartbeatS: 9 }).url).searchParams.get('heartbeat')).toBe('4');
    expect(new URL(parseAmqpUrl('amqp://h', { heartbeatS: 9 }).url).searchParams.get('heartbeat')).toBe('9');
    expect(parseAmqpUrl('amqp://h?publishTimeoutMs=2500&quorum=a').options).toMatchObject({ publishTimeoutMs: 2_500, quorumQueues: ['a'] });
    expect(() => parseAmqpUrl('amqp://h?qourum=a')).toThrow(/unknown broker URL parameter "qourum"; known: quorum, .*publishTimeoutMs, heartbeat/);
  });
});
