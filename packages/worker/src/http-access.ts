import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

/**
 * Who may talk to what celeriac serves over HTTP (worker metrics, the dashboard), one rule for both:
 * 1. It listens on a loopback address unless told otherwise.
 * 2. Any other address needs a token; every request must then carry `Authorization: Bearer <token>`.
 * 3. Without a token, a request must come over a loopback connection (both ends 127.0.0.0/8 or
 *    ::1) and name a loopback host or an allowed one in `Host` (a page on another site whose name
 *    was pointed at 127.0.0.1, DNS rebinding, is refused). The `Host` header alone proves nothing:
 *    the client chooses it. A reverse proxy on the same machine makes every request look local, so
 *    behind one, set a token or authenticate in the proxy.
 */

export interface AccessRules {
  /** When set, requests that need it carry `Authorization: Bearer <token>`. */
  token: string | null;
  /** Host names (the `Host` header, without port) accepted without a token besides loopback ones, over a loopback connection; `*`: any. */
  allowedHosts: readonly string[];
}

/** Why a request is refused: the status, a stable code, a message for a person, headers to send. */
export interface Refusal {
  status: 401 | 403;
  code: 'UNAUTHORIZED' | 'FORBIDDEN';
  message: string;
  headers: Record<string, string>;
}

/**
 * Rules 2 and 3: null when the request may go on. `needsToken`: whether this request needs the
 * token when one is set (the dashboard's pages do not: they ask for it).
 */
export function refuseAccess(req: IncomingMessage, rules: AccessRules, needsToken = true): Refusal | null {
  if (rules.token !== null) {
    if (!needsToken || hasBearer(req, rules.token)) return null;
    return { status: 401, code: 'UNAUTHORIZED', message: 'this needs its token: send Authorization: Bearer <token>', headers: { 'WWW-Authenticate': 'Bearer realm="celeriac"' } };
  }
  const { remoteAddress, localAddress } = req.socket ?? {};
  if (!remoteAddress || !localAddress || !isLoopback(remoteAddress) || !isLoopback(localAddress)) {
    return forbidden(`requests from ${remoteAddress ?? 'an unknown address'} are refused: without a token only this machine is answered, over 127.0.0.1 or ::1 (set a token)`);
  }
  const name = hostOf(req.headers.host);
  if (name !== null && (isLoopback(name) || allowed(rules, name))) return null;
  return forbidden(`requests for host ${JSON.stringify(req.headers.host ?? '')} are refused: without a token only loopback names are answered (set a token, or list the name in allowedHosts)`);
}

/** Whether `name` (a host name without port) is in `rules.allowedHosts`. */
export function allowed(rules: AccessRules, name: string): boolean {
  return rules.allowedHosts.some((h) => h === '*' || h.toLowerCase() === name.toLowerCase());
}

/** The host name of a `Host` header (lower-cased, no port, IPv6 without brackets' port), or null when it does not parse. */
export function hostOf(header: string | undefined): string | null {
  if (!header) return null;
  try {
    return new URL(`http://${header}`).hostname;
  } catch {
    return null;
  }
}

function forbidden(message: string): Refusal {
  return { status: 403, code: 'FORBIDDEN', message, headers: {} };
}

/** True for `localhost`, 127.0.0.0/8 and ::1 (also as an IPv4-mapped address). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** Whether the request carries `Authorization: Bearer <token>` (scheme in any case; compared in constant time, surrounding blanks ignored). */
export function hasBearer(req: IncomingMessage, token: string): boolean {
  const match = /^bearer\s+(.*)$/is.exec(req.headers.authorization ?? '');
  if (!match) return false;
  // Hash both so the comparison takes the same time whatever the lengths.
  const digest = (s: string) => createHash('sha256').update(s.trim()).digest();
  return timingSafeEqual(digest(match[1]!), digest(token));
}

/**
 * The rule of binding: `host` must be loopback or `token` set; throws `makeError(message)` otherwise,
 * the message naming the flag and variable that set a token.
 */
export function assertBindable<E extends Error>(host: string, token: string | null | undefined, names: { flag: string; env: string }, makeError: (message: string) => E): void {
  if (isLoopback(host) || (token ?? '').trim() !== '') return;
  throw makeError(`refusing to listen on ${host} without a token: anyone who reaches it could read (and act on) your queues. Set ${names.flag} <secret> or ${names.env}, or listen on 127.0.0.1`);
}
