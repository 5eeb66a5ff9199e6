import type { IncomingMessage } from 'node:http';
import { allowed, hostOf, refuseAccess, type AccessRules } from '@celeriac/worker';
import { HttpError } from './respond.js';

export type { AccessRules };

/**
 * Who may do what (binding, tokens and the no-token rule are @celeriac/worker's http-access.ts,
 * shared with the worker's metrics server):
 * 1. With a token, every /api and /metrics request carries `Authorization: Bearer <token>` (401);
 *    the pages load without it (they ask for it).
 * 2. Without one, only a loopback connection naming a loopback or allowed host is answered (403).
 * 3. An action is a POST of JSON (415 otherwise: an HTML form cannot send that without a CORS
 *    preflight the browser refuses). Without a token, an `Origin` header, when sent, is this host
 *    or an allowed one (403); with a token it is not checked: a page on another site cannot attach
 *    the `Authorization` header without a preflight, and a proxy in front may change the host.
 */
export function checkAccess(req: IncomingMessage, rules: AccessRules, needsToken: boolean): void {
  const refusal = refuseAccess(req, rules, needsToken);
  if (refusal) throw new HttpError(refusal.status, refusal.code, refusal.code === 'UNAUTHORIZED' ? 'this dashboard needs its token: send Authorization: Bearer <token>' : refusal.message, refusal.headers);
}

export function checkAction(req: IncomingMessage, rules: AccessRules): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `actions take Content-Type: application/json (got ${type || 'none'})`);
  const origin = req.headers.origin;
  if (origin === undefined || rules.token !== null) return;
  let from: URL | null;
  try {
    from = new URL(origin);
  } catch {
    from = null;
  }
  const host = hostUrl(req.headers.host);
  if (from !== null && ((host !== null && from.host === host) || allowed(rules, from.hostname))) return;
  throw new HttpError(403, 'FORBIDDEN', `cross-site request refused: Origin ${origin} is not this dashboard's host`);
}

/** The `Host` header as `host[:port]` (lower-cased, default port dropped), or null when it does not parse. */
function hostUrl(header: string | undefined): string | null {
  const name = hostOf(header);
  return name === null ? null : new URL(`http://${header}`).host;
}
