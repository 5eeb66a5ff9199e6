import type { IncomingMessage, ServerResponse } from 'node:http';
import { BackendError, CeleriacError, ControlUnavailableError, ValidationError } from '@celeriac/core';
import type { ApiError } from './api.js';

/**
 * Writing answers: JSON bodies, the error shape of every failure (`ApiError`), the security
 * headers every response carries, and reading a bounded JSON body.
 */

/** Largest POST body accepted. */
export const MAX_BODY_BYTES = 64 * 1024;

export const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'";

/** An answer other than 200: its status, stable code and message for a person. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function setSecurityHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, err: unknown): void {
  const e = toHttpError(err);
  const body: ApiError = { error: { code: e.code, message: e.message } };
  if (res.headersSent) return void res.destroy();
  sendJson(res, e.status, body, e.headers);
}

/** Core's errors by kind: a bad input 400, a missing control plane or an unreachable backend 503, anything else 500. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ControlUnavailableError) return new HttpError(503, 'CONTROL_UNAVAILABLE', err.message);
  if (err instanceof ValidationError) return new HttpError(400, err.code, err.message);
  if (err instanceof BackendError || isConnectionError(err)) return new HttpError(503, 'UNAVAILABLE', (err as Error).message);
  if (err instanceof CeleriacError) return new HttpError(500, err.code, err.message);
  return new HttpError(500, 'INTERNAL', err instanceof Error ? err.message : String(err));
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH']);

/** What the Redis and AMQP clients throw when the server is gone (system errors, a closed connection or channel). */
function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
  return /connection (is )?closed|channel (is )?closed|MaxRetriesPerRequest|ClusterAllFailed|socket closed|Connection lost|Stream isn't writeable/i.test(`${err.name} ${err.message}`);
}

/**
 * The JSON body of a POST, `{}` when empty; 413 past `MAX_BODY_BYTES`, 400 when it is not a JSON
 * object. A body a framework already read (Express's `express.json()` before the mount) is taken
 * from `req.body`.
 */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) throw tooLarge();
  const parsed = (req as { body?: unknown }).body;
  if (req.readableEnded && parsed !== undefined && !Buffer.isBuffer(parsed) && typeof parsed !== 'string') return asObject(parsed);
  let text: string;
  if (req.readableEnded && (Buffer.isBuffer(parsed) || typeof parsed === 'string')) {
    text = parsed.toString();
    if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw tooLarge();
  } else {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw tooLarge();
      chunks.push(chunk);
    }
    text = Buffer.concat(chunks).toString('utf8');
  }
  text = text.trim();
  if (text === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'BAD_REQUEST', `the body is not JSON: ${(err as Error).message}`);
  }
  return asObject(body);
}

function asObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'BAD_REQUEST', 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

function tooLarge(): HttpError {
  return new HttpError(413, 'PAYLOAD_TOO_LARGE', `the body is over ${MAX_BODY_BYTES} bytes`, { Connection: 'close' });
}
