import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { networkInterfaces } from 'node:os';
import { createApp, type App, type AppOptions } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { createDashboard, serveDashboard, type ServedDashboard, type ServeOptions } from '@celeriac/dashboard';
import type { QueuesView } from '../packages/dashboard/src/api.js';
import { Worker } from '@celeriac/worker';
import type { Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AMQP_URL } from '../packages/amqp-backend/src/testing.js';
import { CHROMIUM_MISSING, launchBrowser, type TestBrowser } from './support/browser.js';
import { controlBackends } from './support/control-backends.js';
import { startDemoTraffic } from './support/dashboard-demo.js';
import { urlWith } from './redis/helpers.js';

// The dashboard's pages in real Chromium, against the real server on Redis, Redis Cluster and
// RabbitMQ (with a Redis store, and alone): what a person sees and clicks, checked against what
// the brokers say. Without /usr/bin/chromium every test skips, saying what to install.
// Every run saves screenshots of the overview and a failed task's page per broker in
// .cache/screenshots/ (gitignored) to look at; SCREENSHOTS=1 (npm run screenshots) also makes the
// README's docs/images/dashboard-{overview,task}.png from realistic traffic.

const { prefix, backends, apps, workers } = controlBackends('dash-ui');
const BACKENDS = backends.filter((b) => b.name !== 'memory');
const XSS = '<img src=x onerror=window.__xss=1>';
const BROWSER_TEST_MS = 60_000;

if (CHROMIUM_MISSING) console.warn(`[dashboard-browser] every test skipped: ${CHROMIUM_MISSING}`);

let browser: TestBrowser;
const served: ServedDashboard[] = [];
const pages: (Page & { errors: string[] })[] = [];

beforeAll(async () => {
  if (CHROMIUM_MISSING) return;
  // The pages as the sources are now (the server serves dist/ui; the build swaps each file in whole).
  await promisify(execFile)(process.execPath, [fileURLToPath(new URL('../packages/dashboard/scripts/build-ui.mjs', import.meta.url))], { timeout: 60_000 });
  browser = await launchBrowser();
}, 90_000);
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  // Every page ran without an uncaught exception or a CSP violation.
  const errors = pages.flatMap((p) => p.errors);
  await Promise.all(pages.splice(0).map((p) => p.close()));
  await Promise.all(served.splice(0).map((s) => s.close()));
  expect(errors).toEqual([]);
});

async function open(url: string, options?: Parameters<TestBrowser['page']>[0]) {
  const page = await browser.page(options);
  pages.push(page);
  await page.goto(url);
  return page;
}

const byTestId = (page: Page, id: string) => page.getByTestId(id);
/** The text of the first match now ('' when there is none): for expect.poll, which does the waiting. */
const textNow = async (locator: Locator) => (await locator.allTextContents())[0]?.trim() ?? '';
const text = (page: Page, id: string) => textNow(byTestId(page, id));
const POLL = { timeout: 10_000, interval: 100 };

/** Saves what the page shows now as .cache/screenshots/<name>.png (every run: an artifact to look at, not compared). */
async function saveScreenshot(page: Page, name: string) {
  const dir = new URL('../.cache/screenshots/', import.meta.url);
  await mkdir(dir, { recursive: true });
  await page.screenshot({ path: fileURLToPath(new URL(`${name}.png`, dir)), fullPage: true });
}

/** The XSS payload shows as text, no <img> was made from it, its handler never ran. */
async function expectInert(page: Page) {
  await expect.poll(() => page.getByText(XSS, { exact: false }).count(), POLL).toBeGreaterThan(0);
  expect(await page.locator('img').count()).toBe(0);
  expect(await page.evaluate('typeof window.__xss')).toBe('undefined'); // (browser code as text: this file has no DOM types)
}

/** An app on `options` with one task that fails, as told, and a dashboard on a free loopback port. */
async function setup(options: AppOptions, dashboard: (queue: string) => ServeOptions = () => ({})) {
  const queue = uniqueQueue('dui');
  const app = createApp({ ...options, defaultQueue: queue });
  apps.push(app);
  const failures = new Set<string>();
  const job = app.task('dash.job', { input: z.object({ note: z.string(), fail: z.boolean().default(false), hold: z.boolean().default(false) }), retry: { maxAttempts: 1 } }, async ({ note, fail, hold }, ctx) => {
    if (fail && !failures.has(ctx.id)) {
      failures.add(ctx.id); // fails the first time only: a redriven task succeeds
      throw new Error(`job failed: ${note}`);
    }
    if (hold) await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)));
    return { done: note };
  });
  const startWorker = async () => {
    const worker = new Worker(app, { queues: [queue], concurrency: 2, blockMs: 200 });
    workers.push(worker);
    await worker.start();
    return worker;
  };
  const server = await serveDashboard(app, { port: 0, ...dashboard(queue) });
  served.push(server);
  return { app, queue, job, startWorker, url: server.url };
}

/**
 * `app`'s dashboard on node:http under `mount` (as Express's `app.use(mount, handler)` would hand it
 * the request), counting the requests the server saw per path and how many are under way. `at()`
 * reads the server's sampler clock (the `at` of /api/queues, a new snapshot every second) without
 * being counted.
 */
async function mountDashboard(app: App, mount = '') {
  const dashboard = createDashboard(app);
  const seen = new Map<string, number>();
  const underWay = new Map<string, number>();
  const add = (map: Map<string, number>, path: string, n: number) => map.set(path, (map.get(path) ?? 0) + n);
  const server = createServer((req, res) => {
    const path = req.url!.split('?')[0]!;
    if (mount && path !== mount && !path.startsWith(`${mount}/`)) return void res.writeHead(404).end();
    if (req.headers['x-test-probe'] === undefined) {
      add(seen, path, 1);
      add(underWay, path, 1);
      res.on('close', () => add(underWay, path, -1));
    }
    if (mount) Object.assign(req, { originalUrl: req.url, url: req.url!.slice(mount.length) || '/' });
    dashboard.handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // The browser keeps idle connections open: drop them, or close() waits for them.
  served.push({ url: '', close: async () => (await dashboard.close(), await new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections()))) });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${mount}`;
  const at = async () => ((await (await fetch(`${base}/api/queues`, { headers: { 'x-test-probe': '1' } })).json()) as QueuesView).at;
  return { base, at, seen: (path: string) => seen.get(path) ?? 0, underWay: (path: string) => underWay.get(path) ?? 0 };
}

const row = (page: Page, queue: string) => page.locator(`[data-testid="queue-row"][data-queue="${queue}"]`);

describe.skipIf(CHROMIUM_MISSING !== null)(CHROMIUM_MISSING === null ? 'the dashboard in Chromium' : `the dashboard in Chromium (skipped: ${CHROMIUM_MISSING})`, () => {
  describe.each(BACKENDS)('on $name', ({ name, options }) => {

    it('the overview lists a queue, and its counts follow enqueues without a reload', { timeout: BROWSER_TEST_MS }, async () => {
      const { queue, job, url } = await setup(options());
      await job.enqueue({ note: 'first' });
      const page = await open(url);
      await expect.poll(() => textNow(row(page, queue).getByTestId('queue-ready')), POLL).toBe('1');
      const loaded = await page.evaluate(() => performance.timeOrigin);
      await job.enqueueMany([{ payload: { note: 'a' } }, { payload: { note: 'b' } }]);
      await expect.poll(() => textNow(row(page, queue).getByTestId('queue-ready')), POLL).toBe('3');
      expect(await page.evaluate(() => performance.timeOrigin)).toBe(loaded); // the same page, not reloaded
      await saveScreenshot(page, `overview-${name}`);
      await row(page, queue).getByTestId('queue-link').click();
      await expect.poll(() => text(page, 'queue-name'), POLL).toBe(queue);
      expect(new URL(page.url()).pathname).toBe(`/queues/${queue}`);
    });

    it('a failed task page shows its payload, error and stack as text (an HTML payload is inert)', { timeout: BROWSER_TEST_MS }, async () => {
      const { queue, job, startWorker, url } = await setup(options());
      await startWorker();
      const handle = await job.enqueue({ note: XSS, fail: true });
      await expect(handle.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'failed' });
      const page = await open(`${url}tasks/${handle.id}`);
      await expect.poll(() => text(page, 'task-state'), POLL).toBe('failed');
      expect(await text(page, 'task-name')).toBe('dash.job');
      expect(await text(page, 'task-queue')).toBe(queue);
      expect(JSON.parse(await text(page, 'task-payload'))).toEqual({ note: XSS, fail: true });
      expect(await text(page, 'task-error-message')).toBe(`job failed: ${XSS}`);
      expect(await text(page, 'task-stack')).toMatch(/^Error: job failed: <img[\s\S]*\n\s+at /);
      expect(await text(page, 'task-worker')).not.toBe('—');
      await expectInert(page);
      await saveScreenshot(page, `task-${name}`);
      // A deep link survives a reload.
      await page.reload();
      await expect.poll(() => text(page, 'task-state'), POLL).toBe('failed');
    });

  });

  // The queue page's actions and the task page's revoke, on every broker.
  describe.each(BACKENDS)('on $name', ({ name, options }) => {
    it('with a token, "show all" lists every dead letter in the page, past the 20 of the queue view', { timeout: BROWSER_TEST_MS }, async () => {
      const { queue, job, startWorker, url } = await setup(options(), () => ({ token: 's3cret-token' }));
      await startWorker();
      const handles = await job.enqueueMany(Array.from({ length: 22 }, (_, i) => ({ payload: { note: `dies ${i}`, fail: true } })));
      await Promise.all(handles.map((h) => expect(h.result({ timeoutMs: 20_000 })).rejects.toMatchObject({ state: 'failed' })));
      const page = await open(`${url}queues/${queue}`);
      await byTestId(page, 'token-input').fill('s3cret-token');
      await byTestId(page, 'token-submit').click();
      await expect.poll(() => text(page, 'count-dead'), POLL).toBe('22'); // (RabbitMQ may bury a letter just after its failure is stored)
      const rows = page.getByTestId('dead-row');
      await expect.poll(() => rows.count(), POLL).toBe(20);
      expect(await text(page, 'dead-more')).toBe(`Showing the ${name.startsWith('amqp') ? 'oldest' : 'newest'} 20 of 22.`); // RabbitMQ reads its dead letters from the head
      await byTestId(page, 'dead-show-all').click(); // fetched by the page, with its token (a raw API link would answer 401)
      await expect.poll(() => rows.count(), POLL).toBe(22);
      expect(await byTestId(page, 'dead-more').count()).toBe(0);
      expect(new Set(await rows.evaluateAll((els) => els.map((el) => el.getAttribute('data-id'))))).toEqual(new Set(handles.map((h) => h.id)));
      await byTestId(page, 'dead-show-all').click();
      await expect.poll(() => rows.count(), POLL).toBe(20);
    });

    it('a dead letter redriven from its button runs again and succeeds; its error shows as text', { timeout: BROWSER_TEST_MS }, async () => {
      const { app, queue, job, startWorker, url } = await setup(options());
      await startWorker();
      const handle = await job.enqueue({ note: XSS, fail: true });
      await expect(handle.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'failed' });
      const page = await open(`${url}queues/${queue}`);
      const letter = page.locator(`[data-testid="dead-row"][data-id="${handle.id}"]`);
      await expect.poll(() => textNow(letter), POLL).toContain(`job failed: ${XSS}`);
      expect(await textNow(letter.getByTestId('dead-error'))).toBe(`Error: job failed: ${XSS}`); // on RabbitMQ with a store apart too
      await expectInert(page);
      await letter.getByTestId('redrive-one').click();
      await expect.poll(() => text(page, 'action-notice'), POLL).toBe('Redrove 1 task.');
      await expect.poll(async () => (await app.inspect.task(handle.id, { queue }))?.state, POLL).toBe('succeeded');
      await expect.poll(() => letter.count(), POLL).toBe(0);
    });

    it('pause and resume from the queue page', { timeout: BROWSER_TEST_MS }, async () => {
      const { app, queue, job, url } = await setup(options());
      await job.enqueue({ note: 'waiting' });
      const page = await open(`${url}queues/${queue}`);
      await byTestId(page, 'pause').click();
      await expect.poll(() => app.control.paused(), POLL).toContain(queue);
      await expect.poll(() => byTestId(page, 'queue-paused').count(), POLL).toBe(1);
      await byTestId(page, 'resume').click();
      await expect.poll(() => app.control.paused(), POLL).not.toContain(queue);
      await expect.poll(() => byTestId(page, 'queue-paused').count(), POLL).toBe(0);
      await expect.poll(() => byTestId(page, 'pause').count(), POLL).toBe(1);
    });

    it('revoke and terminate a running task from its page, after confirming', { timeout: BROWSER_TEST_MS }, async () => {
      const { app, queue, job, startWorker, url } = await setup(options());
      await startWorker();
      const handle = await job.enqueue({ note: 'long', hold: true });
      await expect.poll(async () => (await app.inspect.task(handle.id, { queue }))?.state, POLL).toBe('active');
      const page = await open(`${url}tasks/${handle.id}`);
      await expect.poll(() => text(page, 'task-state'), POLL).toBe('active');
      await byTestId(page, 'revoke-terminate').click();
      await byTestId(page, 'confirm-cancel').click(); // asks first; cancelling changes nothing
      expect(await byTestId(page, 'confirm-dialog').count()).toBe(0);
      expect((await app.inspect.task(handle.id, { queue }))?.revoked).toBeNull();
      await byTestId(page, 'revoke-terminate').click();
      await byTestId(page, 'confirm-yes').click();
      await expect.poll(async () => (await app.inspect.task(handle.id, { queue }))?.state, POLL).toBe('revoked');
      await expect.poll(() => text(page, 'task-state'), POLL).toBe('revoked');
      expect(await byTestId(page, 'revoke').count()).toBe(0); // no action on a finished task
    });
  });

  it('the workers page lists a worker with what it runs; the schedules page its schedule; the queue page its running, ready and delayed tasks', { timeout: BROWSER_TEST_MS }, async () => {
    const { app, queue, job, url } = await setup({ broker: urlWith(prefix) });
    app.schedule(`${queue}.nightly`, { cron: '0 3 * * *', tz: 'Europe/Paris', task: job, payload: { note: 'nightly' } });
    const worker = new Worker(app, { queues: [queue], concurrency: 1, blockMs: 200, beat: true });
    workers.push(worker);
    await worker.start();
    const running = await job.enqueue({ note: 'long', hold: true });
    await expect.poll(async () => (await app.inspect.task(running.id, { queue }))?.state, POLL).toBe('active');
    const waiting = await job.enqueue({ note: 'next' }); // concurrency 1: it waits
    const later = await job.enqueue({ note: 'later' }, { delayMs: 3_600_000 });

    const page = await open(`${url}queues/${queue}`);
    const inSection = (section: string, id: string) => page.getByTestId(section).locator(`a[data-testid="task-link"]`, { hasText: id });
    await expect.poll(() => textNow(page.getByTestId('running').locator('tr', { hasText: running.id })), POLL).toContain(worker.id);
    await expect.poll(() => inSection('ready', waiting.id).count(), POLL).toBe(1);
    await expect.poll(() => textNow(page.getByTestId('delayed').locator('tr', { hasText: later.id })), POLL).toContain('in 59 min');

    await byTestId(page, 'nav-workers').click();
    const workerRow = page.locator('[data-testid="worker-row"]', { hasText: worker.id });
    await expect.poll(() => textNow(workerRow), POLL).toContain(queue);
    expect(await textNow(workerRow)).toContain(String(process.pid));
    await expect.poll(() => workerRow.locator(`a[href*="${running.id}"]`).count(), POLL).toBe(1); // its active task, linked (from its next heartbeat)

    await byTestId(page, 'nav-schedules').click();
    const scheduleRow = page.locator('[data-testid="schedule-row"]', { hasText: `${queue}.nightly` });
    await expect.poll(() => textNow(scheduleRow), POLL).toContain('0 3 * * *');
    expect(await textNow(scheduleRow)).toContain('Europe/Paris');
  });

  it('purge and discard ask first in a dialog; cancelling does nothing, confirming does it', { timeout: BROWSER_TEST_MS }, async () => {
    const { app, queue, job, startWorker, url } = await setup({ broker: urlWith(prefix) });
    const worker = await startWorker();
    const dead = await job.enqueue({ note: 'dies', fail: true });
    await expect(dead.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'failed' });
    await worker.stop({ graceMs: 1_000 });
    await job.enqueueMany([{ payload: { note: 'a' } }, { payload: { note: 'b' } }]);
    await job.enqueue({ note: 'later' }, { delayMs: 3_600_000 });
    const page = await open(`${url}queues/${queue}`);
    await expect.poll(() => text(page, 'count-ready'), POLL).toBe('2');
    await expect.poll(() => text(page, 'count-delayed'), POLL).toBe('1');
    await byTestId(page, 'purge').click();
    expect(await text(page, 'confirm-dialog')).toContain(`Delete all 2 ready and 1 delayed tasks of ${queue}?`); // purge takes both
    await byTestId(page, 'confirm-cancel').click();
    expect((await app.inspect.queue(queue)).ready).toBe(2);
    await byTestId(page, 'purge').click();
    await byTestId(page, 'confirm-yes').click();
    await expect.poll(() => text(page, 'action-notice'), POLL).toBe('Purged 3 tasks.');
    expect(await app.inspect.queue(queue)).toMatchObject({ ready: 0, delayed: 0 });
    await expect.poll(() => text(page, 'count-ready'), POLL).toBe('0');
    await expect.poll(() => text(page, 'count-delayed'), POLL).toBe('0');

    const letter = page.locator(`[data-testid="dead-row"][data-id="${dead.id}"]`);
    await letter.getByTestId('discard-one').click();
    await byTestId(page, 'confirm-yes').click();
    await expect.poll(() => text(page, 'action-notice'), POLL).toBe('Discarded 1 dead letter.');
    expect(await app.inspect.deadLetters(queue)).toEqual([]);
    await expect.poll(() => letter.count(), POLL).toBe(0);
  });

  it('a purge waits as long as the server allows it (130 s), a poll 15 s (on the page\'s clock)', { timeout: BROWSER_TEST_MS }, async () => {
    const { queue, job, url } = await setup({ broker: urlWith(prefix) });
    await job.enqueue({ note: 'x' });
    const page = await browser.page();
    pages.push(page);
    await page.clock.install(); // the page's timers and Date run only when told
    await page.goto(`${url}queues/${queue}`);
    await expect.poll(() => text(page, 'count-ready'), POLL).toBe('1');
    await page.route('**/api/queues/*/purge', () => {}); // the server never answers
    await byTestId(page, 'purge').click();
    await byTestId(page, 'confirm-yes').click();
    await page.clock.runFor(20_000);
    expect(await byTestId(page, 'action-notice').count()).toBe(0); // still waiting after 20 s
    expect(await byTestId(page, 'purge').isDisabled()).toBe(true);
    await page.clock.runFor(111_000);
    await expect.poll(() => text(page, 'action-notice'), POLL).toBe('the dashboard server did not answer within 130 s');
    // A poll gives up at 15 s.
    await page.route(`**/api/queues/${queue}?*`, () => {});
    await page.clock.runFor(2_000); // the next poll starts, and hangs
    await page.clock.runFor(15_000);
    await expect.poll(() => text(page, 'error-banner'), POLL).toContain('the dashboard server did not answer within 15 s');
  });

  it('revoke (without terminate) of a delayed task from its page: recorded, and shown on the page', { timeout: BROWSER_TEST_MS }, async () => {
    const { app, queue, job, url } = await setup({ broker: urlWith(prefix) });
    const later = await job.enqueue({ note: 'later' }, { delayMs: 3_600_000 });
    const page = await open(`${url}tasks/${later.id}`);
    await expect.poll(() => text(page, 'task-state'), POLL).toBe('scheduled');
    expect(JSON.parse(await text(page, 'task-payload'))).toEqual({ note: 'later' });
    await byTestId(page, 'revoke').click();
    await byTestId(page, 'confirm-yes').click();
    await expect.poll(async () => (await app.inspect.task(later.id, { queue }))?.revoked, POLL).toMatchObject({ terminate: false });
    await expect.poll(() => byTestId(page, 'task-revoked').count(), POLL).toBe(1);
  });

  it('mounted under a prefix: deep links load, links and back/forward stay under it', { timeout: BROWSER_TEST_MS }, async () => {
    const { queue, job, app } = await setup({ broker: urlWith(prefix) });
    await job.enqueue({ note: 'x' });
    const mount = '/admin/queues';
    const { base } = await mountDashboard(app, mount);
    const bare = await open(base); // the mount URL as typed, without its trailing slash, is the overview
    await expect.poll(() => row(bare, queue).count(), POLL).toBe(1);
    expect(await byTestId(bare, 'not-found').count()).toBe(0);
    await row(bare, queue).getByTestId('queue-link').click();
    await expect.poll(() => new URL(bare.url()).pathname, POLL).toBe(`${mount}/queues/${queue}`);
    const page = await open(`${base}/queues/${queue}`);
    await expect.poll(() => text(page, 'queue-name'), POLL).toBe(queue);
    await byTestId(page, 'nav-overview').click();
    await expect.poll(() => new URL(page.url()).pathname, POLL).toBe(`${mount}/`);
    await expect.poll(() => row(page, queue).count(), POLL).toBe(1);
    await page.goBack();
    await expect.poll(() => text(page, 'queue-name'), POLL).toBe(queue);
    expect(new URL(page.url()).pathname).toBe(`${mount}/queues/${queue}`);
  });

  it('when the API fails, the page keeps its last data under an error banner, and clears it once the API answers again', { timeout: BROWSER_TEST_MS }, async () => {
    const { queue, job, url } = await setup({ broker: urlWith(prefix) });
    await job.enqueue({ note: 'x' });
    const page = await open(url);
    await expect.poll(() => textNow(row(page, queue).getByTestId('queue-ready')), POLL).toBe('1');
    // The server's answer while its broker is out (the API tests make a real one; here the page's side of it).
    const outage = { error: { code: 'UNAVAILABLE', message: 'the broker did not answer within 5000 ms' } };
    const queuesView = (u: URL) => u.pathname === '/api/queues'; // whatever its query (?points=…)
    await page.route(queuesView, (route) => route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify(outage) }));
    await expect.poll(() => text(page, 'error-banner'), POLL).toContain('the broker did not answer within 5000 ms');
    expect(await textNow(row(page, queue).getByTestId('queue-ready'))).toBe('1');
    await page.unroute(queuesView);
    await expect.poll(() => byTestId(page, 'error-banner').count(), POLL).toBe(0);
  });

  it('each page polls its endpoint at most once per refreshMs: requests the server saw over its sampler ticks', { timeout: BROWSER_TEST_MS }, async () => {
    const { app, queue, job } = await setup({ broker: urlWith(prefix) });
    await job.enqueue({ note: 'x' });
    const { base, at, seen } = await mountDashboard(app);
    const overview = await open(`${base}/`);
    const queuePage = await open(`${base}/queues/${queue}`);
    const endpoints = ['/api/queues', `/api/queues/${queue}`];
    await expect.poll(() => Math.min(...endpoints.map(seen)), POLL).toBeGreaterThanOrEqual(1);
    const from = await at();
    const before = endpoints.map(seen);
    await expect.poll(at, POLL).toBeGreaterThanOrEqual(from + 5_000);
    const ticks = ((await at()) - from) / 1_000;
    const polls = endpoints.map((e, i) => seen(e) - before[i]!);
    // refreshMs is 1 s: a poll a tick, plus one for the sampler's snapshot being up to a tick old at each end.
    for (const n of polls) expect(n).toBeGreaterThanOrEqual(2);
    for (const n of polls) expect(n).toBeLessThanOrEqual(ticks + 2);
    expect(seen('/api/info')).toBe(2); // once per page
    expect(await textNow(row(overview, queue).getByTestId('queue-ready'))).toBe('1');
    expect(await text(queuePage, 'count-ready')).toBe('1');
  });

  it('polls while the tab is shown, not at all while it is hidden, and again once shown', { timeout: BROWSER_TEST_MS }, async () => {
    const { app } = await setup({ broker: urlWith(prefix) });
    const { base, at, seen, underWay } = await mountDashboard(app);
    const page = await open(`${base}/`);
    const polls = () => seen('/api/queues');
    await expect.poll(polls, POLL).toBeGreaterThanOrEqual(2);
    // Headless Chromium never hides a tab: say it is hidden, as the browser would.
    await page.evaluate(`Object.defineProperty(document, 'hidden', { configurable: true, get: () => true }); document.dispatchEvent(new Event('visibilitychange'))`);
    // A request already under way may still land: wait for a sampler tick with none under way.
    const hiddenAt = await at();
    await expect.poll(async () => (await at()) >= hiddenAt + 1_000 && underWay('/api/queues') === 0, POLL).toBe(true);
    const hidden = polls();
    const quietFrom = await at();
    await expect.poll(at, POLL).toBeGreaterThanOrEqual(quietFrom + 2_000); // two refresh periods: a poll would have come
    expect(polls()).toBe(hidden);
    await page.evaluate(`Object.defineProperty(document, 'hidden', { configurable: true, get: () => false }); document.dispatchEvent(new Event('visibilitychange'))`);
    await expect.poll(polls, POLL).toBeGreaterThan(hidden);
  });

  it('on RabbitMQ alone: the hint in a banner, the named queues with their counts, no control actions', { timeout: BROWSER_TEST_MS }, async () => {
    const { queue, job, url } = await setup({ broker: AMQP_URL }, (q) => ({ queues: [q] }));
    await job.enqueue({ note: 'x' });
    const page = await open(url);
    await expect.poll(() => text(page, 'control-banner'), POLL).toMatch(/RabbitMQ|results|store/i);
    await expect.poll(() => textNow(row(page, queue).getByTestId('queue-ready')), POLL).toBe('1');
    expect(await byTestId(page, 'overview-chart').count()).toBe(0); // no rates without the workers' registry
    await row(page, queue).getByTestId('queue-link').click();
    await expect.poll(() => text(page, 'count-ready'), POLL).toBe('1');
    expect(await byTestId(page, 'running').count()).toBe(0);
    expect(await byTestId(page, 'pause').count()).toBe(0);
    expect(await byTestId(page, 'task-search').count()).toBe(0);
  });

  it('asks for the token once when served on a non-loopback address with one, then works', { timeout: BROWSER_TEST_MS }, async (ctx) => {
    const host = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (!host) {
      const why = 'skipped: this machine has no non-loopback IPv4 address to serve the dashboard on';
      console.warn(`[dashboard-browser] token prompt on a non-loopback address ${why}`);
      ctx.skip(why);
    }
    const options = { broker: urlWith(prefix) };
    const bare = createApp(options);
    apps.push(bare);
    await expect(serveDashboard(bare, { host, port: 0 })).rejects.toThrow(/--token/); // no token: refuses to start
    const { queue, job, url } = await setup(options, () => ({ host, token: 's3cret-token' }));
    expect(new URL(url).hostname).toBe(host);
    await job.enqueue({ note: 'x' });
    const page = await open(url);
    expect(await byTestId(page, 'token-input').getAttribute('autocomplete')).toBe('off'); // not offered to the password manager
    await byTestId(page, 'token-input').fill('wrong');
    await byTestId(page, 'token-submit').click();
    await expect.poll(() => byTestId(page, 'token-refused').count(), POLL).toBe(1);
    await byTestId(page, 'token-input').fill('s3cret-token');
    await byTestId(page, 'token-submit').click();
    await expect.poll(() => textNow(row(page, queue).getByTestId('queue-ready')), POLL).toBe('1');
    await page.reload(); // kept for the tab's session: not asked again
    await expect.poll(() => textNow(row(page, queue).getByTestId('queue-ready')), POLL).toBe('1');
    expect(await byTestId(page, 'token-form').count()).toBe(0);
  });

  it('a task opened from the search box is then polled in its own queue only', { timeout: BROWSER_TEST_MS }, async () => {
    const { queue, job, url } = await setup({ broker: urlWith(prefix) });
    const later = await job.enqueue({ note: 'later' }, { delayMs: 3_600_000 });
    const page = await open(url);
    const asked: string[] = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.pathname === `/api/tasks/${later.id}`) asked.push(u.search);
    });
    await byTestId(page, 'task-search').fill(later.id);
    await byTestId(page, 'task-search').press('Enter');
    await expect.poll(() => text(page, 'task-state'), POLL).toBe('scheduled');
    expect(asked[0]).toBe(''); // the id alone: every queue is looked in
    const narrowed = `?queue=${encodeURIComponent(queue)}`;
    await expect.poll(() => asked.filter((q) => q === narrowed).length, POLL).toBeGreaterThanOrEqual(2);
    expect(asked.slice(asked.indexOf(narrowed))).toEqual(asked.slice(asked.indexOf(narrowed)).map(() => narrowed)); // and no more in every queue
    expect(await text(page, 'task-state')).toBe('scheduled'); // the page stayed drawn through the switch
  });

  it('an HTML task id typed in the search box is shown as text in the error, never run', { timeout: BROWSER_TEST_MS }, async () => {
    const { url } = await setup({ broker: urlWith(prefix) });
    const page = await open(url);
    await byTestId(page, 'task-search').fill(XSS);
    await byTestId(page, 'task-search').press('Enter');
    await expect.poll(() => text(page, 'error-banner'), POLL).toContain(XSS);
    await expectInert(page);
  });

  it('at phone width (390 px) the overview does not overflow sideways; wide tables scroll in their box', { timeout: BROWSER_TEST_MS }, async () => {
    const { queue, job, url } = await setup({ broker: urlWith(prefix) });
    await job.enqueue({ note: 'x' });
    const page = await open(url, { width: 390, height: 844 });
    await expect.poll(() => row(page, queue).count(), POLL).toBe(1);
    const widths = await page.evaluate<{ page: number; body: number; viewport: number }>('({ page: document.documentElement.scrollWidth, body: document.body.scrollWidth, viewport: window.innerWidth })');
    expect(widths.page).toBeLessThanOrEqual(widths.viewport);
    expect(widths.body).toBeLessThanOrEqual(widths.viewport);
    expect(await page.locator('nav a[data-testid="nav-workers"]').isVisible()).toBe(true);
  });

  if (process.env.SCREENSHOTS === '1') it('screenshots of the overview and a task page with realistic traffic (SCREENSHOTS=1)', { timeout: 240_000 }, async () => {
    const demo = await startDemoTraffic({ broker: urlWith(prefix) });
    apps.push(demo.app); // closed after the test; the worker is stopped by demo.stop()
    try {
      const server = await serveDashboard(demo.app, { port: 0 });
      served.push(server);
      await new Promise((resolve) => setTimeout(resolve, Number(process.env.SCREENSHOTS_WARMUP_MS ?? 90_000))); // charts need a history
      await mkdir(new URL('../docs/images/', import.meta.url), { recursive: true });
      const overview = await open(server.url, { width: 1280, height: 900 });
      await expect.poll(() => overview.getByTestId('queue-row').count(), POLL).toBeGreaterThan(3);
      await overview.screenshot({ path: new URL('../docs/images/dashboard-overview.png', import.meta.url).pathname, fullPage: true });
      const task = await open(`${server.url}tasks/${await demo.declined()}`, { width: 1280, height: 900 });
      await expect.poll(() => text(task, 'task-state'), POLL).toBe('failed');
      await task.screenshot({ path: new URL('../docs/images/dashboard-task.png', import.meta.url).pathname, fullPage: true });
    } finally {
      await demo.stop();
    }
  });
});
