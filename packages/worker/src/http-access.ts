import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

/**
 * Who may talk to what celeriac serves over HTTP (worker metrics, the dashboard), one rule for both:
 * 1. It listens on a loopback address unless told otherwise.
 * 2. Any other address needs a token; every request must then carry `Authorization: Bearer <token>`.
 * 3. Without a token, a request must come over a loopback TCP connection (both ends 127.0.0.0/8 or
 *    ::1; not a Unix socket or named pipe, which is what a reverse proxy in front of a server
 *    usually connects to: it would make every request from anywhere look local) and name a loopback host or an allowed one in `Host`
 *    (a trailing dot and IPv4-mapped IPv6 allowed; a page on another site whose name
 *    was pointed at 127.0.0.1, DNS rebinding, is refused). The `Host` header alone proves nothing:
 *    the client chooses it. A reverse proxy on the same machine makes every request look local, so
 *    behind one, set a token or authenticate in the proxy.
 */

export interface AccessRules {
  /** When set, requests that need it carry `Authorization: Bearer <token>`. */
  token: string | null;
  /** Host names (the `Host` header, without port; see `allowedHostIssue`) accepted without a token besides loopback ones, over a loopback connection. */
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
    const from = remoteAddress ?? 'a Unix socket or pipe (a proxy in front could be passing on anyone)';
    return forbidden(`requests from ${from} are refused: without a token only this machine is answered, over 127.0.0.1 or ::1 (set a token)`);
  }
  const name = hostOf(req.headers.host);
  if (name !== null && (isLoopback(name) || allowed(rules, name))) return null;
  return forbidden(`requests for host ${JSON.stringify(req.headers.host ?? '')} are refused: without a token only loopback names are answered (set a token, or list the name in allowedHosts)`);
}

/** Whether `name` (a host name without port, as `hostOf` gives it) is in `rules.allowedHosts`. */
export function allowed(rules: AccessRules, name: string): boolean {
  return rules.allowedHosts.some((h) => hostOf(isIP(h) === 6 ? `[${h}]` : h) === name);
}

/**
 * Why an `allowedHosts` entry could never match, or null when it is fine: it must be a host name
 * or address without port or path (`*`, any host, would turn off the checks of rule 3: refused).
 */
export function allowedHostIssue(entry: string): string | null {
  if (entry === '*') return 'allowedHosts "*" would answer any site without a token (DNS rebinding, cross-site actions): set a token instead';
  let url: URL | null = null;
  try {
    url = new URL(`http://${isIP(entry) === 6 ? `[${entry}]` : entry}`);
  } catch {
    // reported below
  }
  // Any spelling the URL parser normalises (upper case, 127.1, uncompressed IPv6) matches as `hostOf` normalises the Host header.
  const bare = url !== null && url.port === '' && url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password && !/[/?#@]/.test(entry);
  return bare ? null : `allowedHosts entries are host names without port or path (got ${JSON.stringify(entry)})`;
}

/** The host name of a `Host` header (lower-cased, no port, no trailing dot; IPv6 in brackets), or null when it does not parse. */
export function hostOf(header: string | undefined): string | null {
  if (!header) return null;
  try {
    return new URL(`http://${header}`).hostname.replace(/\.$/, '');
  } catch {
    return null;
  }
}

function forbidden(message: string): Refusal {
  return { status: 403, code: 'FORBIDDEN', message, headers: {} };
}

/** True for `localhost`, 127.0.0.0/8 and ::1 (also as an IPv4-mapped address), with or without a trailing dot. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  // IPv4-mapped: written with dots, or as URL parsing writes it (`::ffff:7f00:1`).
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(h);
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
