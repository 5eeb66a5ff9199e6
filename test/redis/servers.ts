import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function reachable(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function waitUntil(check: () => Promise<boolean>, what: string, withinMs = 15_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts a daemonized redis-server on loopback `port` with extra arguments, unless one already
 * listens there (idempotent: a second run, or a parallel test file, reuses it). Installs nothing:
 * it needs `redis-server` on the PATH, as Debian's redis-server package provides.
 */
export async function ensureRedisServer(port: number, args: string[] = []): Promise<void> {
  if (await reachable(port)) return;
  const dir = join(tmpdir(), 'celeriac-redis', String(port));
  mkdirSync(dir, { recursive: true });
  execFileSync('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--daemonize', 'yes', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--logfile', join(dir, 'redis.log'), '--pidfile', join(dir, 'redis.pid'), ...args,
  ]);
  await waitUntil(() => reachable(port), `redis-server on port ${port}`);
}

/** `redis-cli -p port …` → its output (for setup steps that are not part of the code under test). */
export function redisCli(port: number, ...args: string[]): string {
  return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}
