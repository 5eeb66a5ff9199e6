import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type App } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { createDashboard, serveDashboard, type Info } from '@celeriac/dashboard';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { serveMetrics } from '@celeriac/worker';
import { Registry } from 'prom-client';
import { REDIS_URL, removePrefix, uniquePrefix, urlWith } from './redis/helpers.js';
import { api, errorCode, raw, serve as serveOn, summary } from './support/dashboard-http.js';
import { FaultProxy } from './support/fault-proxy.js';

// The dashboard's HTTP rules, each of which a test here fails without: the token, the host check
// (DNS rebinding), POST-only JSON actions from this origin with bounded bodies, the error shapes,
// the security headers; mounting under a prefix; a broker that stops answering.
const served: { close(): Promise<void> }[] = [];
const proxies: FaultProxy[] = [];
const apps: App[] = [];
const faultPrefix = uniquePrefix('dashf');
afterEach(async () => {
  for (const s of served.splice(0)) await s.close();
  for (const p of proxies.splice(0)) await p.close();
  for (const a of apps.splice(0)) await a.close();
});
afterAll(() => removePrefix(faultPrefix));
const serve = (app: App, options: Parameters<typeof serveOn>[2] = {}) => serveOn(served, app, options);

describe('dashboard HTTP rules', () => {
  function memoryApp() {
    const queue = uniqueQueue('dashs');
    const app = createApp({ broker: `memory://${queue}`, defaultQueue: queue });
    apps.push(app);
    return { app, queue };
  }

  it('with a token, /api and /metrics need Authorization: Bearer <token>; the pages load without it (they ask for it)', async () => {
    const { app } = memoryApp();
    const url = await serve(app, { token: 's3cret' });
    for (const path of ['api/info', 'api/queues', 'metrics', 'api/nope']) {
      const none = await raw(url, path);
      expect([path, none.status, errorCode(none.text)]).toEqual([path, 401, 'UNAUTHORIZED']);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      expect((await raw(url, path, { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await raw(url, path, { headers: { Authorization: 's3cret' } })).status).toBe(401);
    }
    const ok = await raw(url, 'api/info', { headers: { Authorization: 'Bearer s3cret' } });
    expect([ok.status, (JSON.parse(ok.text) as Info).tokenRequired]).toEqual([200, true]);
    expect((await raw(url, 'metrics', { headers: { Authorization: 'Bearer s3cret' } })).status).toBe(200);
    expect((await raw(url, 'tasks/abc')).status).toBe(200);
    expect((await raw(url, 'assets/app.js')).status).toBe(200);
    // A token makes the host rule moot: the name a proxy or Prometheus uses is fine.
    expect((await raw(url, 'api/info', { headers: { Authorization: 'Bearer s3cret', Host: 'dashboard.example.com' } })).status).toBe(200);
  });

  it('refuses a non-loopback host without a token, naming --token and CELERIAC_DASHBOARD_TOKEN', async () => {
    const { app } = memoryApp();
    for (const host of ['0.0.0.0', '192.0.2.1', 'example.com']) {
      await expect(serveDashboard(app, { host, port: 0 })).rejects.toThrow(/refusing to listen on .* without a token.*--token.*CELERIAC_DASHBOARD_TOKEN/);
    }
  });

  it('without a token, a request naming another host is refused (DNS rebinding); loopback names and allowed hosts are served', async () => {
    const { app } = memoryApp();
    const url = await serve(app);
    const port = new URL(url).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'localhost', `localhost.:${port}`, `[::ffff:127.0.0.1]:${port}`]) expect([host, (await raw(url, 'api/info', { headers: { Host: host } })).status]).toEqual([host, 200]);
    for (const path of ['api/info', 'metrics', '', 'assets/app.js']) {
      const res = await raw(url, path, { headers: { Host: `attacker.example:${port}` } });
      expect([path, res.status, errorCode(res.text)]).toEqual([path, 403, 'FORBIDDEN']);
    }
    const allowing = await serve(app, { allowedHosts: ['ops.internal'] });
    expect((await raw(allowing, 'api/info', { headers: { Host: 'ops.internal:8080' } })).status).toBe(200);
    expect((await raw(allowing, 'api/info', { headers: { Host: 'attacker.example' } })).status).toBe(403);
  });

  it('allowedHosts entries that could never match (a port, a path) and "*" (no host check without a token) are refused at start', () => {
    const { app } = memoryApp();
    expect(() => createDashboard(app, { allowedHosts: ['ops.internal:8080'] })).toThrow(/allowedHosts entries are host names without port or path \(got "ops.internal:8080"\)/);
    expect(() => createDashboard(app, { allowedHosts: ['ops.internal/admin'] })).toThrow(/without port or path/);
    expect(() => createDashboard(app, { allowedHosts: ['*'] })).toThrow(/allowedHosts "\*" would answer any site without a token/);
    // Spellings the URL parser normalises are fine: they match the Host header as normalised.
    for (const host of ['0:0:0:0:0:0:0:0', 'OPS.Internal', '127.1', 'ops.internal.']) expect(() => createDashboard(app, { allowedHosts: [host] }).close()).not.toThrow();
  });

  it('without a token, a Unix socket listener is refused (a proxy in front would pass on anyone as "localhost"); with one, answered', async () => {
    const { app, queue } = memoryApp();
    const dashboard = createDashboard(app);
    const server = createServer(dashboard.handler);
    const socketPath = join(tmpdir(), `${queue}.sock`);
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    served.push({ close: async () => (await dashboard.close(), await new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections()))) });
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => request({ socketPath, path: '/api/info', headers: { Host: host } }, (res) => (res.resume(), resolve(res.statusCode!))).on('error', reject).end());
    expect(await status('localhost')).toBe(403);
    expect(await status('attacker.example')).toBe(403);
    const withToken = createDashboard(app, { token: 's3cret' });
    server.removeAllListeners('request');
    server.on('request', withToken.handler);
    served.push({ close: () => withToken.close() });
    const authorised = (token: string) =>
      new Promise<number>((resolve, reject) => request({ socketPath, path: '/api/info', headers: { Host: 'localhost', Authorization: `Bearer ${token}` } }, (res) => (res.resume(), resolve(res.statusCode!))).on('error', reject).end());
    expect(await authorised('s3cret')).toBe(200);
    expect(await authorised('wrong')).toBe(401);
  });

  it('without a token, only a loopback connection is answered: a forged Host: localhost over another interface is 403', async (ctx) => {
    const address = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (!address) {
      console.warn('SKIPPED: this machine has no non-loopback IPv4 interface, so a request from another address cannot be made');
      return ctx.skip();
    }
    const { app } = memoryApp();
    const dashboard = createDashboard(app);
    const server = createServer(dashboard.handler);
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    served.push({ close: async () => (await dashboard.close(), await new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections()))) });
    const port = (server.address() as AddressInfo).port;
    for (const path of ['api/info', 'metrics', '', 'api/queues']) {
      const res = await raw(`http://${address}:${port}/`, path, { headers: { Host: `localhost:${port}` } });
      expect([path, res.status, errorCode(res.text)]).toEqual([path, 403, 'FORBIDDEN']);
    }
    const loopback = await raw(`http://127.0.0.1:${port}/`, 'api/info', { headers: { Host: `localhost:${port}` } });
    expect(loopback.status).toBe(200);
  });

  it("the worker's metrics server follows the same rule: without a token, a request naming another host is refused", async () => {
    const metrics = await serveMetrics(new Registry(), { port: 0 });
    served.push(metrics);
    const port = new URL(metrics.url).port;
    const forged = await raw(metrics.url, 'metrics', { headers: { Host: `attacker.example:${port}` } });
    expect([forged.status, errorCode(forged.text)]).toEqual([403, 'FORBIDDEN']);
    expect((await raw(metrics.url, 'metrics')).status).toBe(200);
  });

  it('the Bearer scheme is case-insensitive and a configured token is trimmed (a stray newline from a file)', async () => {
    const { app } = memoryApp();
    const url = await serve(app, { token: ' s3cret\n' });
    for (const header of ['Bearer s3cret', 'bearer s3cret', 'BEARER  s3cret']) expect([header, (await raw(url, 'api/info', { headers: { Authorization: header } })).status]).toEqual([header, 200]);
    expect((await raw(url, 'api/info', { headers: { Authorization: 'Bearer s3cre' } })).status).toBe(401);
    expect(() => createDashboard(app, { token: '  ' })).toThrow(/token must not be empty/);
  });

  it('behind a proxy: with a token the Origin is not checked (a cross-site page cannot send Authorization); without one, allowed hosts are accepted origins', async () => {
    const { app, queue } = memoryApp();
    const json = { 'Content-Type': 'application/json' };
    const pause = `api/queues/${queue}/pause`;
    const tokened = await serve(app, { token: 's3cret', queues: [queue] });
    const res = await raw(tokened, pause, { method: 'POST', headers: { ...json, Authorization: 'Bearer s3cret', Host: 'backend.internal:5555', Origin: 'https://dash.example.com' }, body: '{}' });
    expect(res.status).toBe(200);
    expect((await raw(tokened, `api/queues/${queue}/resume`, { method: 'POST', headers: { ...json, Origin: 'https://dash.example.com' }, body: '{}' })).status).toBe(401);
    await app.control.resume(queue);
    const allowing = await serve(app, { allowedHosts: ['ops.internal'], queues: [queue] });
    // The proxy (on this machine) passes Host on as 127.0.0.1; the browser's Origin is the proxy's name.
    expect((await raw(allowing, pause, { method: 'POST', headers: { ...json, Origin: 'https://ops.internal' }, body: '{}' })).status).toBe(200);
    expect((await raw(allowing, pause, { method: 'POST', headers: { ...json, Host: 'ops.internal', Origin: 'https://attacker.example' }, body: '{}' })).status).toBe(403);
  });

  it('actions are POSTs of JSON from this origin only, with bodies up to 64 KiB; nothing happens otherwise', async () => {
    const { app, queue } = memoryApp();
    const url = await serve(app, { queues: [queue] });
    const json = { 'Content-Type': 'application/json' };
    const pause = `api/queues/${queue}/pause`;
    const get = await raw(url, pause);
    expect([get.status, get.headers.allow, errorCode(get.text)]).toEqual([405, 'POST', 'METHOD_NOT_ALLOWED']);
    const wrongWay = await raw(url, 'api/queues', { method: 'POST', headers: json, body: '{}' });
    expect([wrongWay.status, wrongWay.headers.allow]).toEqual([405, 'GET']);
    expect((await raw(url, 'queues/x', { method: 'POST', headers: json, body: '{}' })).status).toBe(405);
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await raw(url, pause, { method: 'POST', headers: { 'Content-Type': type }, body: '{}' });
      expect([type, res.status, errorCode(res.text)]).toEqual([type, 415, 'UNSUPPORTED_MEDIA_TYPE']);
    }
    expect((await raw(url, pause, { method: 'POST' })).status).toBe(415);
    const port = new URL(url).port;
    for (const origin of ['http://attacker.example', `http://attacker.example:${port}`, 'null']) {
      const res = await raw(url, pause, { method: 'POST', headers: { ...json, Origin: origin }, body: '{}' });
      expect([origin, res.status, errorCode(res.text)]).toEqual([origin, 403, 'FORBIDDEN']);
    }
    const big = await raw(url, `api/queues/${queue}/redrive`, { method: 'POST', headers: json, body: JSON.stringify({ ids: ['x'.repeat(70 * 1024)] }) });
    expect([big.status, errorCode(big.text)]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    expect(await app.control.paused()).not.toContain(queue);
    const same = await raw(url, pause, { method: 'POST', headers: { ...json, Origin: `http://127.0.0.1:${port}` }, body: '' });
    expect([same.status, JSON.parse(same.text)]).toEqual([200, { queue, paused: true }]);
    expect(await app.control.paused()).toContain(queue);
  });

  it('bad input is a 400 naming the problem; an unknown endpoint a 404; every error is JSON', async () => {
    const { app, queue } = memoryApp();
    const url = await serve(app);
    const cases: [string, string, object | undefined, number, string][] = [
      ['GET', `api/queues/${queue}/dead?limit=0`, undefined, 400, 'BAD_REQUEST'],
      ['GET', `api/queues/${queue}/dead?limit=10001`, undefined, 400, 'BAD_REQUEST'],
      ['GET', 'api/queues/bad%20name/dead', undefined, 400, 'INVALID_NAME'],
      ['GET', 'api/queues/%E0%A4%A', undefined, 400, 'BAD_REQUEST'],
      ['POST', `api/queues/${queue}/discard`, {}, 400, 'BAD_REQUEST'],
      ['POST', `api/queues/${queue}/discard`, { ids: [] }, 400, 'BAD_REQUEST'],
      ['POST', `api/queues/${queue}/redrive`, { ids: 'x' }, 400, 'BAD_REQUEST'],
      ['POST', 'api/tasks/t1/revoke', { terminate: 'yes' }, 400, 'BAD_REQUEST'],
      ['GET', 'api/tasks/bad%20id', undefined, 400, 'INVALID_NAME'],
      ['GET', 'api/queue', undefined, 404, 'NOT_FOUND'],
      ['GET', 'api/queues/a/b/c', undefined, 404, 'NOT_FOUND'],
      ['GET', 'assets/nope.js', undefined, 404, 'NOT_FOUND'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const res = await raw(url, path, { method, headers: { 'Content-Type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      expect([method, path, res.status, res.headers['content-type'], errorCode(res.text)]).toEqual([method, path, status, 'application/json; charset=utf-8', code]);
    }
    const notJson = await raw(url, `api/queues/${queue}/pause`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{nope' });
    expect([notJson.status, errorCode(notJson.text)]).toEqual([400, 'BAD_REQUEST']);
    expect(await app.control.paused()).not.toContain(queue);
  });

  it('every answer carries the security headers; the page is not cached and the API is not either', async () => {
    const { app } = memoryApp();
    const url = await serve(app);
    const csp = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'";
    for (const path of ['', 'queues/x', 'api/info', 'api/nope', 'metrics', 'assets/app.js']) {
      const res = await raw(url, path);
      expect([path, res.headers['content-security-policy'], res.headers['x-content-type-options'], res.headers['referrer-policy']]).toEqual([path, csp, 'nosniff', 'no-referrer']);
    }
    expect((await raw(url, 'tasks/1')).headers['cache-control']).toBe('no-store');
    expect((await raw(url, 'api/info')).headers['cache-control']).toBe('no-store');
    const asset = await raw(url, 'assets/app.js');
    expect(asset.headers['content-type']).toBe('application/javascript; charset=utf-8');
    expect((await raw(url, 'assets/app.js', { headers: { 'If-None-Match': asset.headers.etag! } })).status).toBe(304);
    expect((await raw(url, 'assets/app.css')).headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('mounted under a prefix (Express strips it from req.url, keeps it in originalUrl): pages get <base href> of the mount, API and assets answer there', async () => {
    const { app, queue } = memoryApp();
    const dashboard = createDashboard(app, { queues: [queue] });
    const raw404 = { close: () => dashboard.close() };
    served.push(raw404);
    const server = createServer(async (req, res) => {
      const mount = '/admin/queues';
      if (req.url === mount || req.url!.startsWith(`${mount}/`)) {
        Object.assign(req, { originalUrl: req.url, url: req.url!.slice(mount.length) || '/' });
        // As express.json() in front of the mount: the body is read and parsed before the handler runs.
        if (req.headers['content-type'] === 'application/json') {
          let text = '';
          for await (const chunk of req) text += String(chunk);
          Object.assign(req, { body: JSON.parse(text) as unknown });
        }
        return dashboard.handler(req, res);
      }
      res.writeHead(404).end('not the dashboard');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    served.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    for (const path of ['admin/queues', 'admin/queues/', `admin/queues/queues/${queue}`, 'admin/queues/tasks/abc?x=1']) {
      const page = await raw(url, path);
      expect([path, page.status, page.headers['content-type']]).toEqual([path, 200, 'text/html; charset=utf-8']);
      expect(page.text).toContain('<base href="/admin/queues/">');
    }
    expect(JSON.parse((await raw(url, 'admin/queues/api/queues')).text)).toMatchObject({ queues: [expect.objectContaining({ queue })] });
    expect((await raw(url, 'admin/queues/assets/app.js')).status).toBe(200);
    const discard = await raw(url, `admin/queues/api/queues/${queue}/discard`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ids: ['gone'] }) });
    expect([discard.status, JSON.parse(discard.text)]).toEqual([200, { queue, discarded: 0 }]);
    // A body the framework parsed is held to the same 64 KiB (sent chunked: no Content-Length to go by).
    const big = await raw(url, `admin/queues/api/queues/${queue}/redrive`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }, body: JSON.stringify({ ids: ['x'.repeat(70 * 1024)] }) });
    expect([big.status, errorCode(big.text)]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    expect((await raw(url, 'api/queues')).status).toBe(404);

    // A basePath given outright: taken off req.url when the server did not strip it, and HTML-escaped in the page.
    const odd = createDashboard(app, { basePath: '/ops/"q"/' });
    served.push({ close: () => odd.close() });
    const plain = createServer(odd.handler);
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    served.push({ close: () => new Promise<void>((resolve) => plain.close(() => resolve())) });
    const plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/`;
    expect((await raw(plainUrl, 'ops/%22q%22/tasks/1')).text).toContain('<base href="/ops/&#34;q&#34;/">');
    expect((await raw(plainUrl, 'ops/"q"/api/info')).status).toBe(200);
    expect(() => createDashboard(app, { basePath: 'no-slash' })).toThrow(/basePath must be a path/);
    expect(() => createDashboard(app, { refreshMs: 10 })).toThrow(/refreshMs must be at least 1000/);
    expect(() => createDashboard(app, { queues: ['bad name'] })).toThrow(/queues\.0/);
    // The real rule (core's message): no ':' and at most 100 characters.
    expect(() => createDashboard(app, { queues: ['a:b'] })).toThrow(/invalid queue name "a:b": use 1–100 characters from A–Z a–z 0–9 _ \. -/);
  });

  it('a broker that does not answer: 503 within the read bound, with the reason; the last good snapshot comes back once it answers', async () => {
    const proxy = await new FaultProxy(REDIS_URL).start();
    proxies.push(proxy);
    const queue = uniqueQueue('dashf');
    const app = createApp({ broker: urlWith(faultPrefix, `redis://127.0.0.1:${proxy.port}`), defaultQueue: queue });
    apps.push(app);
    await app.task('dash.noop', { input: z.object({}) }, () => 1).enqueue({});
    const url = await serve(app);
    await expect.poll(() => summary(url, queue), { timeout: 5_000 }).toMatchObject({ ready: 1 });
    proxy.hold();
    await expect.poll(async () => (await api(url, 'api/queues')).status, { timeout: 8_000 }).toBe(503);
    const down = await api<{ error: { code: string; message: string } }>(url, 'api/queues');
    expect(down.body.error).toEqual({ code: 'UNAVAILABLE', message: expect.stringMatching(/cannot be read: no answer from the broker or store within 2 s/) });
    expect((await raw(url, 'metrics')).status).toBe(503);
    proxy.heal();
    await expect.poll(async () => (await api(url, 'api/queues')).status, { timeout: 8_000 }).toBe(200);
    expect(await summary(url, queue)).toMatchObject({ ready: 1 });
  }, 30_000);
});
