import type { IncomingMessage } from 'node:http';
import { hasBearer, isLoopback } from '@celeriac/worker';
import { HttpError } from './respond.js';

/**
 * Who may do what (the rule of binding itself is @celeriac/worker's `assertBindable`):
 * 1. With a token, every /api and /metrics request carries `Authorization: Bearer <token>` (401).
 * 2. Without one, the `Host` header must name a loopback address or an allowed host (403): a page
 *    on another site whose name was pointed at 127.0.0.1 (DNS rebinding) is refused.
 * 3. An action is a POST of JSON (415 otherwise: an HTML form cannot send that without a CORS
 *    preflight the browser refuses), and an `Origin` header, when sent, is this host (403).
 */
export interface AccessRules {
  token: string | null;
  /** Host names accepted without a token besides loopback ones (`*`: any). */
  allowedHosts: readonly string[];
}

export function checkHost(req: IncomingMessage, rules: AccessRules): void {
  if (rules.token !== null || rules.allowedHosts.includes('*')) return;
  const name = hostUrl(req.headers.host)?.hostname ?? null;
  if (name !== null && (isLoopback(name) || rules.allowedHosts.some((h) => h.toLowerCase() === name))) return;
  throw new HttpError(
    403,
    'FORBIDDEN',
    `requests for host ${JSON.stringify(req.headers.host ?? '')} are refused: without a token the dashboard answers loopback names only (set a token, or list the name in allowedHosts)`,
  );
}

export function checkToken(req: IncomingMessage, rules: AccessRules): void {
  if (rules.token === null || hasBearer(req, rules.token)) return;
  throw new HttpError(401, 'UNAUTHORIZED', 'this dashboard needs its token: send Authorization: Bearer <token>', { 'WWW-Authenticate': 'Bearer realm="celeriac"' });
}

export function checkAction(req: IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `actions take Content-Type: application/json (got ${type || 'none'})`);
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const host = hostUrl(req.headers.host)?.host ?? null;
  let from: string | null;
  try {
    from = new URL(origin).host;
  } catch {
    from = null;
  }
  if (from === null || host === null || from !== host) throw new HttpError(403, 'FORBIDDEN', `cross-site request refused: Origin ${origin} is not this dashboard's host`);
}

/** The `Host` header as a URL (host lower-cased, default port dropped), or null when it does not parse. */
function hostUrl(header: string | undefined): URL | null {
  if (!header) return null;
  try {
    return new URL(`http://${header}`);
  } catch {
    return null;
  }
}
