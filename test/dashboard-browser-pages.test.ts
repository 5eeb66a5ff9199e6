import { mkdir } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { createApp } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { serveDashboard } from '@celeriac/dashboard';
import { describe, expect, it } from 'vitest';
import { CHROMIUM_MISSING } from './support/browser.js';
import { BROWSER_TEST_MS, POLL, XSS, byTestId, dashboardInChromium, row, text, textNow } from './support/dashboard-browser.js';
import { AMQP_URL } from '../packages/amqp-backend/src/testing.js';
import { startDemoTraffic } from './support/dashboard-demo.js';
import { urlWith } from './redis/helpers.js';

// The dashboard's pages in real Chromium on Redis (and RabbitMQ alone): workers, schedules, the
// dialogs, mounting, errors, polling, the token prompt, phone width. Without /usr/bin/chromium
// every test skips, saying what to install. SCREENSHOTS=1 (npm run screenshots) also makes the
// README's docs/images/dashboard-{overview,task}.png from realistic traffic.

const { prefix, apps, workers, served, newPage, open, setup, mountDashboard, expectInert } = dashboardInChromium('dash-pages');

describe.skipIf(CHROMIUM_MISSING !== null)(CHROMIUM_MISSING === null ? 'the dashboard in Chromium' : `the dashboard in Chromium (skipped: ${CHROMIUM_MISSING})`, () => {
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

  it('"show all" loads the dead letters once, not every second; "Refresh list" and an action load them again', { timeout: BROWSER_TEST_MS }, async () => {
    const { queue, job, startWorker, url } = await setup({ broker: urlWith(prefix) });
    await startWorker();
    const die = async (n: number) => {
      const handles = await job.enqueueMany(Array.from({ length: n }, (_, i) => ({ payload: { note: `dies ${i}`, fail: true } })));
      await Promise.all(handles.map((h) => expect(h.result({ timeoutMs: 20_000 })).rejects.toMatchObject({ state: 'failed' })));
    };
    await die(21);
    const page = await open(`${url}queues/${queue}`);
    const listings: string[] = [];
    let views = 0;
    page.on('request', (r) => {
      const path = new URL(r.url()).pathname;
      if (path.endsWith(`/${queue}/dead`)) listings.push(r.url());
      else if (path.endsWith(`/queues/${queue}`)) views++;
    });
    await expect.poll(() => text(page, 'count-dead'), POLL).toBe('21');
    await byTestId(page, 'dead-show-all').click();
    const rows = page.getByTestId('dead-row');
    await expect.poll(() => rows.count(), POLL).toBe(21);
    expect(listings).toEqual([expect.stringContaining('limit=500')]);
    await die(1);
    await expect.poll(() => text(page, 'count-dead'), POLL).toBe('22');
    const seen = views;
    await expect.poll(() => views, POLL).toBeGreaterThanOrEqual(seen + 3); // three more refreshes of the page…
    expect(listings).toHaveLength(1); // …and the full list was not read again
    expect(await rows.count()).toBe(21);
    await byTestId(page, 'dead-refresh').click();
    await expect.poll(() => rows.count(), POLL).toBe(22);
    expect(listings).toHaveLength(2);
    await rows.first().getByTestId('discard-one').click();
    await byTestId(page, 'confirm-yes').click();
    await expect.poll(() => text(page, 'action-notice'), POLL).toBe('Discarded 1 dead letter.');
    await expect.poll(() => rows.count(), POLL).toBe(21); // reloaded after the action
    expect(listings).toHaveLength(3);
  });

  it('a purge waits as long as the server allows it (130 s), a poll 15 s (on the page\'s clock)', { timeout: BROWSER_TEST_MS }, async () => {
    const { queue, job, url } = await setup({ broker: urlWith(prefix) });
    await job.enqueue({ note: 'x' });
    const page = await newPage();
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
