/**
 * The pages' only way to the server: the JSON API (../src/api.ts), by paths relative to the
 * page's <base href>, so the dashboard works under any mount prefix.
 * 1. Sends the token (kept in sessionStorage) as `Authorization: Bearer` on every request.
 * 2. Turns every non-2xx answer into an ApiFailure carrying the API's error code and message.
 * 3. On a 401, tells the shell (onTokenNeeded) so it asks for the token once.
 */
import type { ApiError } from '../src/api.ts';

const TOKEN_KEY = 'celeriac.dashboard.token';

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiFailure';
  }
}

type Listener = () => void;
const tokenListeners = new Set<Listener>();

/** Called whenever the server refuses the token (or wants one); returns the unsubscribe function. */
export function onTokenNeeded(listener: Listener): () => void {
  tokenListeners.add(listener);
  return () => tokenListeners.delete(listener);
}

function readToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: the token lives in this page only
  }
}

let token = readToken();

export function hasToken(): boolean {
  return token !== null;
}

export function setToken(value: string): void {
  token = value;
  try {
    sessionStorage.setItem(TOKEN_KEY, value);
  } catch {
    // storage disabled: kept for this page only
  }
}

/** How long a GET may take before it counts as an error (the pages poll again after). */
const READ_TIMEOUT_MS = 15_000;
/** Purge, redrive and discard: the server gives them 120 s (BULK_TIMEOUT_MS); wait a little longer so its own answer arrives. */
export const BULK_TIMEOUT_MS = 130_000;

async function request<T>(method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  if (method === 'POST') headers['Content-Type'] = 'application/json';
  // A timer rather than AbortSignal.timeout: the same clock as the rest of the page (tests can move it).
  const abort = new AbortController();
  const timer = window.setTimeout(() => abort.abort(), timeoutMs);
  const init: RequestInit = { method, headers, cache: 'no-store', signal: abort.signal };
  if (method === 'POST') init.body = JSON.stringify(body ?? {});
  let response: Response;
  let text: string;
  try {
    response = await fetch(path, init);
    text = await response.text();
  } catch {
    throw new ApiFailure(0, 'NETWORK', abort.signal.aborted ? `the dashboard server did not answer within ${timeoutMs / 1000} s` : 'cannot reach the dashboard server');
  } finally {
    window.clearTimeout(timer);
  }
  let parsed: unknown = null;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    parsed = null;
  }
  if (response.ok) return parsed as T;
  const error = (parsed as Partial<ApiError> | null)?.error;
  const failure = new ApiFailure(response.status, error?.code ?? `HTTP_${response.status}`, error?.message ?? `the server answered ${response.status} ${response.statusText}`);
  if (response.status === 401) for (const listener of tokenListeners) listener();
  throw failure;
}

export const api = {
  get: <T>(path: string) => request<T>('GET', path, undefined, READ_TIMEOUT_MS),
  /** An action; `timeoutMs` is BULK_TIMEOUT_MS for the ones over many tasks (purge, redrive, discard). */
  post: <T>(path: string, body?: unknown, timeoutMs = READ_TIMEOUT_MS) => request<T>('POST', path, body, timeoutMs),
};

/** `api/queues/<queue>/...` with each segment encoded. */
export function apiPath(...segments: string[]): string {
  return ['api', ...segments.map(encodeURIComponent)].join('/');
}
