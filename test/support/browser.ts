import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core, for the dashboard's browser tests. One browser per
 * test file (`launchBrowser` in beforeAll, `close` in afterAll), a fresh profile directory each
 * time, no network of its own (no updates, sync or background fetches), every wait bounded.
 * scripts/services.mjs installs Chromium where it can; where it could not, `CHROMIUM_MISSING`
 * says what to install and the tests skip themselves with that message.
 */
export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_MISSING: string | null = existsSync(CHROMIUM)
  ? null
  : `${CHROMIUM} is missing: install Chromium (Debian/Ubuntu: sudo apt-get install chromium; npm test does it when run as root) to run the dashboard's browser tests`;

/** Bounds for every browser wait: an action or assertion, a page load, the launch. */
export const BROWSER_TIMEOUTS = { actionMs: 10_000, navigationMs: 15_000, launchMs: 30_000 } as const;

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-default-apps', '--disable-extensions'];

export interface TestBrowser {
  /**
   * A new tab (its own sessionStorage) at `width`×`height`, in light or dark. Console errors (CSP
   * violations among them) and uncaught page exceptions are collected in `errors` so a test can assert there were none.
   */
  page(options?: { width?: number; height?: number; colorScheme?: 'light' | 'dark' }): Promise<Page & { errors: string[] }>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'celeriac-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      timeout: BROWSER_TIMEOUTS.launchMs,
      viewport: { width: 1280, height: 800 },
      deviceScaleFactor: 1,
      locale: 'en-US',
      timezoneId: 'UTC',
      colorScheme: 'light',
    });
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
  context.setDefaultTimeout(BROWSER_TIMEOUTS.actionMs);
  context.setDefaultNavigationTimeout(BROWSER_TIMEOUTS.navigationMs);
  // The persistent context opens with one blank tab; each test takes its own.
  await Promise.all(context.pages().map((p) => p.close()));
  return {
    async page({ width = 1280, height = 800, colorScheme = 'light' } = {}) {
      const page = Object.assign(await context.newPage(), { errors: [] as string[] });
      page.on('pageerror', (err) => page.errors.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        // An API error answer (401, 503…) is logged by Chromium as a failed load: the pages handle those.
        if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) page.errors.push(`console: ${msg.text()}`);
      });
      await page.setViewportSize({ width, height });
      await page.emulateMedia({ colorScheme });
      return page;
    },
    async close() {
      try {
        await context.close();
      } finally {
        await rm(profile, { recursive: true, force: true });
      }
    },
  };
}
