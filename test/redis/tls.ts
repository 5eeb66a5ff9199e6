import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureRedisServer } from './servers.js';

export const TLS_PORT = 7015;

/**
 * A TLS-only redis-server on loopback port 7015, with a throwaway CA and a server certificate for
 * 127.0.0.1 made by the machine's openssl (idempotent: files and server are reused).
 */
export async function ensureTlsRedis(): Promise<{ url: string; ca: string }> {
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
  await ensureRedisServer(TLS_PORT, [
    '--port', '0', '--tls-port', String(TLS_PORT),
    '--tls-cert-file', f('server.crt'), '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.crt'), '--tls-auth-clients', 'no',
  ]);
  return { url: `rediss://127.0.0.1:${TLS_PORT}`, ca: f('ca.crt') };
}
