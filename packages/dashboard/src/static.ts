import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './respond.js';

/**
 * The browser pages: the built bundle in dist/ui (found from this file, so it works from src/ in
 * tests and from dist/ once published), and index.html for every page path, its `%BASE%` replaced
 * by where the dashboard is mounted so relative URLs resolve under the mount.
 */
const UI_DIR = new URL('../dist/ui/', import.meta.url);

const ASSETS: Record<string, string> = {
  '/assets/app.js': 'application/javascript; charset=utf-8',
  '/assets/app.css': 'text/css; charset=utf-8',
};

interface Cached {
  mtimeMs: number;
  size: number;
  body: Buffer;
  etag: string;
}

/** Reads dist/ui files, again only when one changed on disk (a rebuild while the server runs). */
export class StaticFiles {
  readonly #cache = new Map<string, Cached>();

  /** @param dir the built pages (a `file:` URL ending in `/`); the package's dist/ui by default. */
  constructor(private readonly dir: URL = UI_DIR) {}

  isAsset(path: string): boolean {
    return Object.hasOwn(ASSETS, path);
  }

  async serveAsset(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const file = await this.#read(path.slice('/assets/'.length));
    const headers = { 'Content-Type': ASSETS[path]!, 'Cache-Control': 'public, max-age=60', ETag: file.etag };
    if (req.headers['if-none-match'] === file.etag) {
      res.writeHead(304, headers);
      return void res.end();
    }
    res.writeHead(200, { ...headers, 'Content-Length': file.body.length });
    res.end(file.body);
  }

  /** index.html with `<base href>` set to `basePath/`. */
  async servePage(res: ServerResponse, basePath: string): Promise<void> {
    const file = await this.#read('index.html');
    const body = Buffer.from(file.body.toString('utf8').replaceAll('%BASE%', escapeHtml(`${basePath}/`)));
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': body.length });
    res.end(body);
  }

  async #read(name: string): Promise<Cached> {
    const url = new URL(name, this.dir);
    let info;
    try {
      info = await stat(url);
    } catch {
      throw new HttpError(500, 'INTERNAL', `the dashboard UI is not built (no ${name} in ${this.dir.pathname}): run npm run build`);
    }
    const cached = this.#cache.get(name);
    if (cached && cached.mtimeMs === info.mtimeMs && cached.size === info.size) return cached;
    const body = await readFile(url);
    const entry = { mtimeMs: info.mtimeMs, size: info.size, body, etag: `"${createHash('sha1').update(body).digest('base64url')}"` };
    this.#cache.set(name, entry);
    return entry;
  }
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
