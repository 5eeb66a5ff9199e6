import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

/**
 * Who may talk to what celeriac serves over HTTP (worker metrics, the dashboard), one rule for both:
 * 1. It listens on a loopback address unless told otherwise.
 * 2. Any other address needs a token; every request must then carry `Authorization: Bearer <token>`.
 */

/** True for `localhost`, 127.0.0.0/8 and ::1 (also as an IPv4-mapped address). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** Whether the request carries `Authorization: Bearer <token>` (compared in constant time). */
export function hasBearer(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization;
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
  // Hash both so the comparison takes the same time whatever the lengths.
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(header.slice('Bearer '.length).trim()), digest(token));
}

/**
 * The rule of binding: `host` must be loopback or `token` set; throws `makeError(message)` otherwise,
 * the message naming the flag and variable that set a token.
 */
export function assertBindable<E extends Error>(host: string, token: string | null | undefined, names: { flag: string; env: string }, makeError: (message: string) => E): void {
  if (isLoopback(host) || (token ?? '') !== '') return;
  throw makeError(`refusing to listen on ${host} without a token: anyone who reaches it could read (and act on) your queues. Set ${names.flag} <secret> or ${names.env}, or listen on 127.0.0.1`);
}
