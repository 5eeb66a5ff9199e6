import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureRedisServer } from './servers.js';

export const TLS_PORT = 7015;
/** A second TLS server that refuses clients without a certificate signed by the test CA. */
export const MTLS_PORT = 7016;

/**
 * A TLS-only redis-server on loopback port 7015, with a throwaway CA and a server certificate for
 * 127.0.0.1 made by the machine's openssl (idempotent: files and server are reused).
 */
export async function ensureTlsRedis(): Promise<{ url: string; ca: string }> {
  const f = makeCerts();
  await ensureRedisServer(TLS_PORT, [
    '--port', '0', '--tls-port', String(TLS_PORT),
    '--tls-cert-file', f('server.crt'), '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.crt'), '--tls-auth-clients', 'no',
  ]);
  return { url: `rediss://127.0.0.1:${TLS_PORT}`, ca: f('ca.crt') };
}

/**
 * A TLS-only redis-server on loopback port 7016 that requires a client certificate
 * (`tls-auth-clients yes`), with a client certificate and key signed by the same throwaway CA.
 */
export async function ensureMutualTlsRedis(): Promise<{ url: string; ca: string; cert: string; key: string }> {
  const f = makeCerts();
  await ensureRedisServer(MTLS_PORT, [
    '--port', '0', '--tls-port', String(MTLS_PORT),
    '--tls-cert-file', f('server.crt'), '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.crt'), '--tls-auth-clients', 'yes',
  ]);
  return { url: `rediss://127.0.0.1:${MTLS_PORT}`, ca: f('ca.crt'), cert: f('client.crt'), key: f('client.key') };
}

/** The CA, server and client certificates (made once by the machine's openssl); returns a path maker. */
function makeCerts(): (name: string) => string {
  const dir = join(tmpdir(), 'celeriac-redis', 'tls');
  mkdirSync(dir, { recursive: true });
  const f = (name: string) => join(dir, name);
  if (!existsSync(f('server.crt'))) {
    const run = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=celeriac test CA', '-keyout', f('ca.key'), '-out', f('ca.crt'));
    run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr'));
    execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1' > '${f('san.ext')}'`]);
    run('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '3650', '-extfile', f('san.ext'), '-out', f('server.crt'));
  }
  if (!existsSync(f('client.crt'))) {
    const run = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=celeriac test client', '-keyout', f('client.key'), '-out', f('client.csr'));
    run('x509', '-req', '-in', f('client.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '3650', '-out', f('client.tmp'));
    execFileSync('mv', [f('client.tmp'), f('client.crt')]); // whole or absent, for a parallel run
  }
  return f;
}
