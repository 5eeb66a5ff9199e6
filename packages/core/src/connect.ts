import { DEFAULT_BROKER_OPTIONS, type Broker, type BrokerOptions } from './broker.js';
import { BackendError, ValidationError } from './errors.js';
import { MemoryBroker } from './memory/broker.js';
import { MemoryResultBackend } from './memory/results.js';
import type { ResultBackend } from './results.js';

/**
 * What a backend package exports so `createApp` can load it from a URL on demand
 * (`@celeriac/redis-backend` for redis:// and rediss://, `@celeriac/amqp-backend` for amqp:// and amqps://).
 */
export interface BackendModule {
  /** `options` default to `DEFAULT_BROKER_OPTIONS`. */
  connectBroker(url: string, options?: BrokerOptions): Promise<Broker>;
  connectResults?(url: string): Promise<ResultBackend>;
}

const PACKAGES: Record<string, string> = {
  'redis:': '@celeriac/redis-backend',
  'rediss:': '@celeriac/redis-backend',
  'amqp:': '@celeriac/amqp-backend',
  'amqps:': '@celeriac/amqp-backend',
};

// `memory://name` gives every app in the process that names it the same broker, so a producer
// module and a worker module can meet without a server; plain `memory://` is private to one app.
const sharedMemory = new Map<string, MemoryBroker>();

export async function connectBroker(url: string, options: BrokerOptions = DEFAULT_BROKER_OPTIONS): Promise<Broker> {
  const parsed = parseUrl(url, 'broker');
  if (parsed.protocol === 'memory:') return memoryBroker(parsed, options);
  return (await loadBackend(parsed)).connectBroker(url, options);
}

export async function connectResults(url: string): Promise<ResultBackend> {
  const parsed = parseUrl(url, 'results');
  if (parsed.protocol === 'memory:') return parsed.host ? memoryBroker(parsed).results : new MemoryResultBackend();
  const mod = await loadBackend(parsed);
  if (!mod.connectResults) {
    throw new ValidationError('INVALID_OPTIONS', `results: ${parsed.protocol}// cannot store results; use a redis:// URL or memory://`);
  }
  return mod.connectResults(url);
}

/** Query parameters that carry secrets (TLS key passphrases, tokens): shown as `***`. */
const SECRET_PARAMS = /pass|secret|token|key$/i;

/**
 * The URL with its secrets replaced, for messages and logs: the password, a user name that stands
 * alone (a token such as `redis://<token>@host`), and query parameters like `passphrase=`.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    else if (u.username) u.username = '***';
    for (const name of [...u.searchParams.keys()]) if (SECRET_PARAMS.test(name) && name !== 'key') u.searchParams.set(name, '***');
    return u.toString().replace(/%2A%2A%2A/g, '***');
  } catch {
    return '(unparseable URL)';
  }
}

/** True for the process-wide `memory://name` brokers, which no single app may close. */
export function isSharedBroker(broker: Broker): boolean {
  for (const shared of sharedMemory.values()) if (shared === broker) return true;
  return false;
}

function memoryBroker(url: URL, options: BrokerOptions = DEFAULT_BROKER_OPTIONS): MemoryBroker {
  if (!url.host) return new MemoryBroker(options);
  // A shared broker keeps the options of the first app that opened it.
  let broker = sharedMemory.get(url.host);
  if (!broker) sharedMemory.set(url.host, (broker = new MemoryBroker(options)));
  return broker;
}

function parseUrl(url: string, what: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ValidationError('INVALID_OPTIONS', `${what}: ${missingScheme(url) ?? `${JSON.stringify(redactUrl(url))} is not a URL`}; use memory://, redis://host:6379, rediss://…, amqp://host:5672 or amqps://…`);
  }
  if (parsed.protocol !== 'memory:' && !(parsed.protocol in PACKAGES)) {
    throw new ValidationError('INVALID_OPTIONS', `${what}: ${missingScheme(url) ?? `unsupported scheme ${parsed.protocol}//`} — use memory://, redis://, rediss://, amqp:// or amqps://`);
  }
  return parsed;
}

/**
 * For `localhost:6379` or `10.0.0.5:5672` — a host and port without a scheme, which `new URL` reads
 * as an unknown scheme `localhost:` or refuses — the URL the user most likely meant, guessed from the port.
 */
function missingScheme(url: string): string | undefined {
  if (url.includes('://')) return undefined;
  // Only something shaped like `[user@]host[:port]` is worth a guess; anything else is simply not a URL.
  const hostLike = /^(?:[^@/\s]*@)?[A-Za-z0-9.-]+(?::(\d+))?(?:[/?#]|$)/.exec(url);
  if (!hostLike) return undefined;
  const port = hostLike[1];
  const guesses = port === '5672' ? ['amqp'] : port === '5671' ? ['amqps'] : port === '6379' ? ['redis'] : ['redis', 'amqp'];
  const meant = guesses.map((scheme) => JSON.stringify(redactUrl(`${scheme}://${url}`))).join(' or ');
  return `${JSON.stringify(url.includes('@') ? '(a URL with credentials)' : url)} has no scheme; did you mean ${meant}?`;
}

async function loadBackend(url: URL): Promise<BackendModule> {
  const pkg = PACKAGES[url.protocol]!;
  try {
    return (await import(pkg)) as BackendModule;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new BackendError(`${url.protocol}// needs the ${pkg} package: run \`npm install ${pkg}\``, { cause: err });
    }
    throw err;
  }
}
