import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { ValidationError } from '@celeriac/core';
import type { Options } from 'amqplib';

/**
 * Where and how to connect, parsed from an amqp:// or amqps:// URL by us rather than by amqplib:
 * amqplib decodes the user and password with `unescape` (Latin-1), so a UTF-8 password such as
 * `p@ss:w/rd%é` (percent-encoded in the URL) reached RabbitMQ mangled and was refused, and it
 * ignores TLS parameters. Given an object instead of a string, amqplib uses the fields as they are.
 */
export interface Endpoint {
  /** amqplib's connection fields (credentials decoded as UTF-8). */
  readonly connect: Options.Connect & { channelMax?: number | undefined };
  /** Socket options: TLS material (`ca`, `cert`, `key`, `passphrase`, `servername`), connect timeout. */
  readonly socket: Record<string, unknown>;
  /** The URL without password or query (which may name a key's passphrase), for messages and logs. */
  readonly display: string;
}

/** Query parameters for the connection itself; celeriac's own (quorum, …) are taken out before. */
export const CONNECTION_PARAMS = ['heartbeat', 'frameMax', 'channelMax', 'locale', 'connectTimeoutMs', 'ca', 'cert', 'key', 'passphrase', 'servername'] as const;

/** Default for `connectTimeoutMs`: a TCP connect or AMQP handshake that hangs longer is retried. */
export const CONNECT_TIMEOUT_MS = 10_000;

const TLS_ONLY = ['ca', 'cert', 'key', 'passphrase', 'servername'] as const;

/**
 * Parses the connection part of a broker URL. TLS material is read from the files named by
 * `ca` (repeatable: each a PEM file of trusted CAs, added to Node's defaults), `cert` and `key`
 * (a client certificate, both or neither) and `passphrase` (of an encrypted key), so a private
 * CA works without the process-wide NODE_EXTRA_CA_CERTS. Problems are reported by parameter name;
 * `alsoKnown` are the caller's own parameters (already taken out), listed when one is misspelt.
 */
export function parseEndpoint(url: string, alsoKnown: readonly string[] = []): Endpoint {
  const u = new URL(url);
  const protocol = u.protocol.slice(0, -1);
  if (protocol !== 'amqp' && protocol !== 'amqps') bad(`the broker URL must start with amqp:// or amqps:// (got ${u.protocol}//)`);
  for (const name of new Set(u.searchParams.keys())) {
    if (!(CONNECTION_PARAMS as readonly string[]).includes(name)) {
      bad(`unknown broker URL parameter "${name}"; known: ${[...alsoKnown, ...CONNECTION_PARAMS].join(', ')}`);
    }
  }
  const q = (name: string) => u.searchParams.get(name);
  if (protocol === 'amqp') {
    const tls = TLS_ONLY.filter((n) => u.searchParams.has(n));
    if (tls.length > 0) bad(`${tls.join(', ')} only apply to TLS connections: use an amqps:// URL`);
  }
  const hostname = u.hostname.replace(/^\[|\]$/g, '') || 'localhost';
  const port = u.port ? Number(u.port) : protocol === 'amqps' ? 5671 : 5672;
  const connect: Endpoint['connect'] = {
    protocol,
    hostname,
    port,
    username: decode(u.username, 'user name') || 'guest',
    password: u.username || u.password ? decode(u.password, 'password') : 'guest',
    // amqplib unescapes the vhost itself (as UTF-8), so it gets the raw path; we only check it decodes.
    vhost: (decode(u.pathname.slice(1), 'virtual host'), u.pathname.slice(1) || '/'),
    heartbeat: whole(q('heartbeat'), 'heartbeat', 'seconds', 0),
    frameMax: whole(q('frameMax'), 'frameMax', 'bytes', 0),
    channelMax: whole(q('channelMax'), 'channelMax', 'channels', 0),
    locale: q('locale') ?? 'en_US',
  };
  const socket: Record<string, unknown> = { timeout: whole(q('connectTimeoutMs'), 'connectTimeoutMs', 'ms', 1) ?? CONNECT_TIMEOUT_MS };
  const cas = u.searchParams.getAll('ca');
  if (cas.length > 0) {
    // `ca` replaces Node's trusted roots; keep them so public CAs still work next to the private one.
    socket.ca = [...rootCertificates, ...cas.map((path) => file(path, 'ca'))];
  }
  const cert = q('cert');
  const key = q('key');
  if ((cert === null) !== (key === null)) bad(`a client certificate needs both cert= and key= (got only ${cert === null ? 'key' : 'cert'})`);
  if (cert !== null && key !== null) {
    socket.cert = file(cert, 'cert');
    socket.key = file(key, 'key');
  }
  const passphrase = q('passphrase');
  if (passphrase !== null) {
    if (key === null) bad('passphrase= unlocks an encrypted key=; give key= and cert= with it');
    socket.passphrase = passphrase;
  }
  const servername = q('servername');
  if (servername !== null) socket.servername = servername;
  const display = `${protocol}://${u.username ? `${u.username}${u.password ? ':***' : ''}@` : ''}${u.host || 'localhost'}/${u.pathname.slice(1)}`;
  return { connect, socket, display };
}

function bad(message: string): never {
  throw new ValidationError('INVALID_OPTIONS', message);
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return bad(`the ${what} in the broker URL is not valid percent-encoding: encode it with encodeURIComponent() (e.g. % as %25)`);
  }
}

function whole(value: string | null, name: string, unit: string, min: number): number | undefined {
  if (value === null) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min) bad(`broker URL parameter ${name} must be a whole number of ${unit} ≥ ${min} (got "${value}")`);
  return n;
}

function file(path: string, param: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    return bad(`broker URL parameter ${param}=${path}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}
