import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createApp, type App, type AppOptions } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { createDashboard, serveDashboard, type ServedDashboard, type ServeOptions } from '@celeriac/dashboard';
import type { QueuesView } from '../../packages/dashboard/src/api.js';
import { Worker } from '@celeriac/worker';
import type { Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { z } from 'zod';
import { CHROMIUM_MISSING, launchBrowser, type TestBrowser } from './browser.js';
import { controlBackends } from './control-backends.js';

/**
 * What the dashboard's browser tests share: real Chromium (one per test file), the dashboard
 * served on the control backends, and the helpers that read the pages.
 */
export const XSS = '<img src=x onerror=window.__xss=1>';
export const BROWSER_TEST_MS = 60_000;
export const byTestId = (page: Page, id: string) => page.getByTestId(id);
/** The text of the first match now ('' when there is none): for expect.poll, which does the waiting. */
export const textNow = async (locator: Locator) => (await locator.allTextContents())[0]?.trim() ?? '';
export const text = (page: Page, id: string) => textNow(byTestId(page, id));
export const POLL = { timeout: 10_000, interval: 100 };
export const row = (page: Page, queue: string) => page.locator(`[data-testid="queue-row"][data-queue="${queue}"]`);

/** Registers the hooks of one browser test file (build the pages, launch Chromium, close what each test opened) and returns its helpers. */
export function dashboardInChromium(name: string) {
  const { prefix, backends, apps, workers } = controlBackends(name);
  const BACKENDS = backends.filter((b) => b.name !== 'memory');

  if (CHROMIUM_MISSING) console.warn(`[dashboard-browser] every test skipped: ${CHROMIUM_MISSING}`);

  let browser: TestBrowser;
  const served: ServedDashboard[] = [];
  const pages: (Page & { errors: string[] })[] = [];

  beforeAll(async () => {
    if (CHROMIUM_MISSING) return;
    // The pages as the sources are now (the server serves dist/ui; the build swaps each file in whole).
    await promisify(execFile)(process.execPath, [fileURLToPath(new URL('../../packages/dashboard/scripts/build-ui.mjs', import.meta.url))], { timeout: 60_000 });
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

  /** A new page, closed (and checked for errors) after the test. */
  async function newPage(options?: Parameters<TestBrowser['page']>[0]) {
    const page = await browser.page(options);
    pages.push(page);
    return page;
  }

  async function open(url: string, options?: Parameters<TestBrowser['page']>[0]) {
    const page = await newPage(options);
    await page.goto(url);
    return page;
  }


  /** Saves what the page shows now as .cache/screenshots/<name>.png (every run: an artifact to look at, not compared). */
  async function saveScreenshot(page: Page, name: string) {
    const dir = new URL('../../.cache/screenshots/', import.meta.url);
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


  return { prefix, apps, workers, BACKENDS, served, newPage, open, setup, mountDashboard, saveScreenshot, expectInert };
}
